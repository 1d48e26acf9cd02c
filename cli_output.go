package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/pamd/pamd/protocol/printable"
)

var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}

// printList writes v as JSON with -o json, else as a table of rows.
func printList(c *cli.Context, v any, header []string, rows [][]string) error {
	switch c.String("output") {
	case "json":
		return printJSON(c.App.Writer, v)
	case "table", "":
	default:
		return usageError("-o %q: want table or json", c.String("output"))
	}
	return writeTable(c.App.Writer, header, rows)
}

// writeTable aligns rows under header. Every cell is escaped: a name, a
// reason or a target's error text with a tab, a newline or an escape
// sequence would otherwise add columns, add rows, or rewrite the screen.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(cells []string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = printable.Escape(c)
		}
		fmt.Fprintln(tw, strings.Join(esc, "\t"))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return tw.Flush()
}

// logLines is a writer for log lines: each Write is one line, and every
// control character in it but the newline that ends it is escaped, so one
// record prints as one line whatever its fields hold.
type logLines struct{ w io.Writer }

func (l logLines) Write(p []byte) (int, error) {
	s := string(p)
	nl := strings.HasSuffix(s, "\n")
	s = printable.Escape(strings.TrimSuffix(s, "\n"))
	if nl {
		s += "\n"
	}
	if _, err := io.WriteString(l.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// printEscaped is fmt.Fprintf with every string, error and Stringer
// argument escaped, for records of several lines (sessions show, accounts
// show) whose layout is the format's.
func printEscaped(w io.Writer, format string, args ...any) {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = printable.Escape(v)
		case error:
			args[i] = printable.Escape(v.Error())
		case fmt.Stringer:
			args[i] = printable.Escape(v.String())
		}
	}
	fmt.Fprintf(w, format, args...)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONLine writes v as exactly one line, for scripts that read a line.
func printJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func jsonOutput(c *cli.Context) bool { return c.String("output") == "json" }

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var stdin = bufio.NewReader(os.Stdin)

// readLine reads one line from standard input without its line ending.
func readLine() (string, error) {
	s, err := stdin.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	return strings.TrimRight(s, "\r\n"), nil
}

func isTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// promptSecret asks on the terminal without echo.
func promptSecret(label string) (string, error) {
	if !isTerminal() {
		return "", fmt.Errorf("%s needed and standard input is not a terminal (use the --*-stdin flag)", strings.TrimSuffix(label, ": "))
	}
	fmt.Fprint(os.Stderr, label)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	return string(b), err
}

// prompt asks on the terminal with echo.
func prompt(label string) (string, error) {
	if !isTerminal() {
		return "", fmt.Errorf("%s needed and standard input is not a terminal", strings.TrimSuffix(label, ": "))
	}
	fmt.Fprint(os.Stderr, label)
	return readLine()
}
