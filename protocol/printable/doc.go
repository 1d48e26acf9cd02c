// Package printable makes text from others (names, reasons, commands, a
// target's error messages) safe to print on a person's terminal: Escape
// shows every character that is not printable as an escape, so no text can
// move the cursor, clear a line, change colours, start a new line or turn
// its letters around (Unicode bidirectional controls) and forge what the
// reader sees. It is what the CLI's tables and log lines, and the SSH
// banners pamd sends, pass their fields through; JSON output needs none.
//
// Files: printable.go (Escape).
package printable
