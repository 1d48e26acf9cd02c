// Package ui serves pamd's web console from files embedded in the binary
// (embed.FS): no CDN, works offline. It imports no other pamd package.
//
// The console is one page (static/index.html, app.js, style.css) over the
// HTTP API, with no build step, and its SSH terminal one more
// (static/term.html, term.js, term.css: a shell over the API's
// WebSocket); static/vendor holds xterm.js, for the terminal and for
// replay, copied from npm by scripts/vendor-ui.
//
// Files: ui.go (Handler), static/ (the assets).
package ui
