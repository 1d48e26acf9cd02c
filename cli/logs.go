package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
)

func (a *app) sessionsLogs(c *cli.Context) error {
	id, err := oneArg(c, "ID")
	if err != nil {
		return err
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	recs, err := client.SessionRecords(c.Context, id)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, recs)
	}
	printRecords(a.stdout, id, recs)
	return nil
}

// printRecords writes a session's records as one line each. Each Fprintf
// below is one line; the writer escapes what the records' fields hold
// (commands, paths, errors, SQL text).
func printRecords(stdout io.Writer, id string, recs []tunnel.Record) {
	w := logLines{stdout}
	var out, in int
	lines := newStreamLines(w)
	for _, r := range recs {
		where := fmt.Sprintf("%s  %s#%d  ", r.Time.Local().Format("15:04:05.000"), short(r.ConnectionID), r.Channel)
		if r.Type == "command" || r.Type == "sql" || r.Type == "rpc" || r.Type == "attention" || (r.Type == "error" && r.Channel == 0 && r.Term == "") {
			where = fmt.Sprintf("%s  %s  ", r.Time.Local().Format("15:04:05.000"), short(r.ConnectionID))
		}
		ch := r.ConnectionID + "#" + strconv.Itoa(r.Channel)
		switch r.Type {
		case "o", "i", "e":
			if !lines.terminal[ch] { // no terminal: the lines themselves, each stream marked
				lines.add(ch, where, r.Type, r.Data)
			} else if r.Type == "i" {
				in += len(r.Data)
			} else {
				out += len(r.Data)
			}
		case "pty":
			lines.terminal[ch] = true
			fmt.Fprintf(w, "%sterminal %s %dx%d\n", where, r.Term, r.Width, r.Height)
		case "r":
			fmt.Fprintf(w, "%sresize %dx%d\n", where, r.Width, r.Height)
		case "shell":
			fmt.Fprintf(w, "%sshell\n", where)
		case "exec":
			fmt.Fprintf(w, "%sexec %s\n", where, r.Command)
		case "subsystem":
			fmt.Fprintf(w, "%ssubsystem %s\n", where, r.Command)
		case "exit":
			lines.flush(ch)
			fmt.Fprintf(w, "%sexit status %d\n", where, *r.Status)
		case "file":
			fmt.Fprintf(w, "%sfile %s %s (%d bytes)\n", where, r.Op, r.Path, r.Size)
		case "forward":
			fmt.Fprintf(w, "%sport forward to %s\n", where, r.Path)
		case "error":
			fmt.Fprintf(w, "%serror: %s\n", where, r.Data)
		case "dropped":
			fmt.Fprintf(w, "%snot recorded: %s\n", where, r.Data)
		case "sql", "rpc", "attention":
			fmt.Fprintf(w, "%s[%s] %s  %s  %.1f ms%s\n", where, r.Database, sqlSummary(r), sqlOutcome(r), r.DurationMS, truncatedNote(r))
		case "command":
			ns := r.Database
			if r.Collection != "" {
				ns += "." + r.Collection
			}
			result := fmt.Sprintf("ok, %d docs", r.Docs)
			if r.Status != nil && *r.Status == 0 {
				result = fmt.Sprintf("error %d: %s", r.Code, r.Error)
			}
			fmt.Fprintf(w, "%s%s %s  %s  %.1f ms  %s%s\n", where, r.Command, ns, result, r.DurationMS, headTail(r.Data, 160), truncatedNote(r))
		}
	}
	lines.flushAll()
	if out+in > 0 {
		fmt.Fprintf(w, "terminal: %d bytes output, %d bytes input (pamd sessions play %s)\n", out, in, id)
	}
}

func (a *app) sessionsPlay(c *cli.Context) error {
	id, err := oneArg(c, "ID")
	if err != nil {
		return err
	}
	if c.Float64("speed") <= 0 {
		return usageError("--speed: want a positive factor")
	}
	cast, err := fetchCast(c, id)
	if err != nil {
		return err
	}
	_, events, err := asciicast.Read(strings.NewReader(cast))
	if err != nil {
		return err
	}
	start, last := time.Now(), 0.0
	offset := 0.0
	for _, e := range events {
		if e.Code != "o" {
			continue
		}
		gap := e.Time - last
		if mw := c.Duration("max-wait").Seconds(); mw > 0 && gap > mw {
			offset += gap - mw
		}
		last = e.Time
		due := start.Add(time.Duration((e.Time - offset) / c.Float64("speed") * float64(time.Second)))
		select {
		case <-time.After(time.Until(due)):
		case <-c.Context.Done():
			return nil
		}
		io.WriteString(a.stdout, e.Data)
	}
	return nil
}

func (a *app) sessionsExport(c *cli.Context) error {
	id, err := oneArg(c, "ID")
	if err != nil {
		return err
	}
	if c.String("format") != "asciicast" {
		return usageError("--format %q: only asciicast is supported", c.String("format"))
	}
	cast, err := fetchCast(c, id)
	if err != nil {
		return err
	}
	if f := c.String("out"); f != "" {
		return os.WriteFile(f, []byte(cast), 0o600)
	}
	_, err = io.WriteString(a.stdout, cast)
	return err
}

func fetchCast(c *cli.Context, id string) (string, error) {
	client, err := client(c)
	if err != nil {
		return "", err
	}
	raw, err := client.SessionAsciicast(c.Context, id)
	return string(raw), err
}

// streamLines prints what channels without a terminal read and wrote as
// lines, each marked with its stream and quoted (Go syntax), so that no
// recorded byte can act on the reader's terminal. A line is printed with
// the time and place of the record that ends it.
type streamLines struct {
	w        io.Writer
	terminal map[string]bool // channels that had a pty: summed up, replayed with play
	pending  map[string]*pendingLine
	order    []string // channel#stream keys with pending text, in first-seen order
}

type pendingLine struct {
	where, stream string
	text          []byte
}

// maxLogLine bounds a printed line (and what is held for one).
const maxLogLine = 4096

var streamNames = map[string]string{"i": "stdin ", "o": "stdout", "e": "stderr"}

func newStreamLines(w io.Writer) *streamLines {
	return &streamLines{w: w, terminal: map[string]bool{}, pending: map[string]*pendingLine{}}
}

func (l *streamLines) add(ch, where, stream, data string) {
	key := ch + "/" + stream
	p := l.pending[key]
	if p == nil {
		p = &pendingLine{stream: stream}
		l.pending[key] = p
		l.order = append(l.order, key)
	}
	p.where = where
	for data != "" {
		line, rest, full := strings.Cut(data, "\n")
		p.text = append(p.text, line[:min(len(line), max(0, maxLogLine-len(p.text)))]...)
		data = rest
		if !full {
			break
		}
		l.print(p)
	}
}

func (l *streamLines) print(p *pendingLine) {
	text := strings.TrimSuffix(string(p.text), "\r")
	cut := ""
	if len(p.text) >= maxLogLine {
		cut = " (line cut)"
	}
	fmt.Fprintf(l.w, "%s%s %s%s\n", p.where, streamNames[p.stream], strconv.Quote(text), cut)
	p.text = p.text[:0]
}

// flush prints the unfinished lines of one channel.
func (l *streamLines) flush(ch string) {
	for _, key := range l.order {
		if p := l.pending[key]; strings.HasPrefix(key, ch+"/") && len(p.text) > 0 {
			l.print(p)
		}
	}
}

func (l *streamLines) flushAll() {
	for _, key := range l.order {
		if p := l.pending[key]; len(p.text) > 0 {
			l.print(p)
		}
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sqlSummary is a SQL Server request as one line: the batch text, or the
// procedure with its parameters.
func sqlSummary(r tunnel.Record) string {
	text := strings.Join(strings.Fields(r.Command), " ")
	if r.Type == "rpc" {
		text = "EXEC " + text + " " + r.Data
	}
	return headTail(text, 200)
}

// headTail shortens s to about n characters keeping its start and its end:
// what a padded statement ends with is what matters.
func headTail(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n*3/5]) + " … " + string(r[len(r)-n*2/5:])
}

// truncatedNote says what pamd cut from a long statement (tunnel.Cut);
// -o json shows the head and tail it kept.
func truncatedNote(r tunnel.Record) string {
	t := r.Truncated
	switch {
	case t == nil:
		return ""
	case t.Unread:
		return fmt.Sprintf("  [truncated: request of %d bytes, sha256 %s; its end was not read]", t.Length, t.SHA256)
	case t.Field != "":
		return fmt.Sprintf("  [truncated: %s of %d bytes, sha256 %s; head and tail kept]", t.Field, t.Length, t.SHA256)
	}
	return fmt.Sprintf("  [truncated: %d long values cut, each with its length and sha256]", t.Values)
}

func sqlOutcome(r tunnel.Record) string {
	if r.Status != nil && *r.Status == 0 {
		if r.Code != 0 {
			return fmt.Sprintf("error %d: %s", r.Code, r.Error)
		}
		return "failed: " + r.Error
	}
	out := fmt.Sprintf("%d rows", r.Rows)
	if r.Affected > 0 {
		out += fmt.Sprintf(", %d affected", r.Affected)
	}
	return out
}
