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
	"github.com/pamd/pamd/server/api"
)

func (a *app) sessionsLogs(c *cli.Context) error {
	id, client, err := argAndClient(c, "ID")
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
	if len(recs) == 0 { // a note, not a record: standard output stays empty
		printEscaped(a.stderr, "pamd: session %s has no records (nothing was recorded, or the gateway has not uploaded them yet)\n", id)
		return nil
	}
	printRecords(a.stdout, id, recs)
	return nil
}

// printRecords writes a session's records as one line each: the time, the
// connection (and channel), and the summary the server's kind rendered for
// the record. What channels without a terminal read and wrote is printed
// as quoted lines per stream; a terminal's bytes are only counted (pamd
// sessions play replays them). The writer escapes what the summaries hold
// (commands, paths, errors, SQL text).
func printRecords(stdout io.Writer, id string, recs []api.Record) {
	w := logLines{stdout}
	var out, in int
	lines := newStreamLines(w)
	for _, rec := range recs {
		r := rec.Record
		where := fmt.Sprintf("%s  %s#%d  ", r.Time.Local().Format("15:04:05.000"), short(r.ConnectionID), r.Channel)
		if connectionRecord(&r) {
			where = fmt.Sprintf("%s  %s  ", r.Time.Local().Format("15:04:05.000"), short(r.ConnectionID))
		}
		ch := r.ConnectionID + "#" + strconv.Itoa(r.Channel)
		switch r.Type {
		case "o", "i", "e":
			if !lines.terminal[ch] { // no terminal: the lines themselves, each stream marked
				if c := r.Truncated; c != nil { // past the recording budget: the tail follows
					lines.flush(ch)
					fmt.Fprintf(w, "%s%s [cut: %d bytes in all, sha256 %s; the start is above, the last %d bytes follow]\n",
						where, streamNames[r.Type], c.Length, c.SHA256, len(r.Data))
				}
				lines.add(ch, where, r.Type, r.Data)
			} else if r.Type == "i" {
				in += len(r.Data)
			} else {
				out += len(r.Data)
			}
			continue
		case "pty":
			lines.terminal[ch] = true
		case "exit":
			lines.flush(ch)
		}
		if rec.Summary != "" {
			fmt.Fprintf(w, "%s%s\n", where, rec.Summary)
		}
	}
	lines.flushAll()
	if out+in > 0 {
		fmt.Fprintf(w, "terminal: %d bytes output, %d bytes input (pamd sessions play %s)\n", out, in, id)
	}
}

// connectionRecord says whether a record is about its connection, not one
// of its channels (requests and commands of database protocols, errors
// before a channel opened): its line names no channel.
func connectionRecord(r *tunnel.Record) bool {
	switch r.Type {
	case "command", "sql", "rpc", "attention":
		return true
	case "error":
		return r.Channel == 0 && r.Term == ""
	}
	return false
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
