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
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
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
