package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/protocol/printable"
)

// outputFlag is -o for every command that prints data. Its value is
// checked as soon as the flags are read, before the command calls the
// server.
func outputFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json", Action: checkOutput}
}

func checkOutput(_ *cli.Context, v string) error {
	switch v {
	case "table", "json", "":
		return nil
	}
	return usageError("-o %q: want table or json", v)
}

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
