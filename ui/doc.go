// Package ui serves pamd's web console from files embedded in the binary
// (embed.FS): no CDN, works offline. It imports no other pamd package.
//
// This first cut serves a status page; the full console comes with its own
// issue.
//
// Files: ui.go (Handler), static/ (the assets).
package ui
