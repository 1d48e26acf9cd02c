package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// readLine reads one line from standard input without its line ending.
func (a *app) readLine() (string, error) {
	s, err := a.in.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// terminal is standard input when it is a terminal.
func (a *app) terminal() (*os.File, bool) {
	f, ok := a.stdin.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) isTerminal() bool {
	_, ok := a.terminal()
	return ok
}

// promptSecret asks on the terminal without echo. flag is the command's
// flag that reads the secret from standard input instead, which the error
// names when there is no terminal to ask on.
func (a *app) promptSecret(label, flag string) (string, error) {
	f, ok := a.terminal()
	if !ok {
		return "", fmt.Errorf("%s needed and standard input is not a terminal (use --%s)", strings.TrimSuffix(label, ": "), flag)
	}
	fmt.Fprint(a.stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	return string(b), err
}

// prompt asks on the terminal with echo.
func (a *app) prompt(label string) (string, error) {
	if !a.isTerminal() {
		return "", fmt.Errorf("%s needed and standard input is not a terminal", strings.TrimSuffix(label, ": "))
	}
	fmt.Fprint(a.stderr, label)
	return a.readLine()
}

// stdinFile is standard input as a file, for the SSH client (which puts a
// terminal in raw mode): the file itself, or a pipe fed from the reader.
func (a *app) stdinFile() (*os.File, error) {
	if f, ok := a.stdin.(*os.File); ok {
		return f, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() {
		io.Copy(w, a.in)
		w.Close()
	}()
	return r, nil
}
