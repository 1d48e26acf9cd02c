package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the embedded assets.
func Handler() http.Handler {
	sub, _ := fs.Sub(static, "static") // cannot fail: the directory is embedded
	return http.FileServer(http.FS(sub))
}
