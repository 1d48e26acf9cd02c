package asciicast

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Header is the first line of a recording.
type Header struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp,omitempty"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

// Event is one line after the header.
type Event struct {
	Time float64 // seconds since the start
	Code string  // "o", "i" or "r"
	Data string
}

// MaxLine bounds a line the reader accepts.
const MaxLine = 1 << 20

var (
	ErrVersion = errors.New("asciicast: not a version 2 recording")
	ErrEvent   = errors.New("asciicast: malformed event")
)

// Writer writes a recording event by event.
type Writer struct {
	w    io.Writer
	last float64
}

// NewWriter writes the header and returns a writer for the events.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Version = 2
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("asciicast: header: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("asciicast: write header: %w", err)
	}
	return &Writer{w: w}, nil
}

// Write appends an event; a time earlier than the last one is raised to it,
// so players never see time run backwards.
func (w *Writer) Write(e Event) error {
	if e.Time < w.last || math.IsNaN(e.Time) {
		e.Time = w.last
	}
	w.last = e.Time
	b, err := json.Marshal([]any{math.Round(e.Time*1e6) / 1e6, e.Code, e.Data})
	if err != nil {
		return fmt.Errorf("asciicast: event: %w", err)
	}
	if _, err := w.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("asciicast: write event: %w", err)
	}
	return nil
}

// Read reads a whole recording.
func Read(r io.Reader) (*Header, []Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("asciicast: read header: %w", err)
		}
		return nil, nil, fmt.Errorf("asciicast: empty recording: %w", io.ErrUnexpectedEOF)
	}
	var h Header
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Version != 2 {
		return nil, nil, ErrVersion
	}
	h.Width, h.Height = ClampSize(h.Width), ClampSize(h.Height)
	var events []Event
	last := 0.0
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil || len(raw) != 3 {
			return nil, nil, fmt.Errorf("%w at event %d", ErrEvent, len(events)+1)
		}
		var e Event
		if json.Unmarshal(raw[0], &e.Time) != nil || json.Unmarshal(raw[1], &e.Code) != nil || json.Unmarshal(raw[2], &e.Data) != nil ||
			e.Time < last || (e.Code != "o" && e.Code != "i" && e.Code != "r" && e.Code != "m") {
			return nil, nil, fmt.Errorf("%w at event %d", ErrEvent, len(events)+1)
		}
		last = e.Time
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("asciicast: read: %w", err)
	}
	return &h, events, nil
}

// MinSize and MaxSize bound a terminal dimension (columns or rows) that pamd
// records or replays: a client may claim any uint32, and a player asked for
// a terminal of four billion columns allocates until it falls over.
const (
	MinSize = 1
	MaxSize = 1000
)

// ClampSize bounds a terminal dimension to MinSize..MaxSize.
func ClampSize(n int) int { return min(max(n, MinSize), MaxSize) }

// Streams of a channel without a terminal, for Plain.
const (
	Stdin  = "i"
	Stdout = "o"
	Stderr = "e"
)

// Plain renders what a command without a terminal read or wrote as "o"
// event data, so that a terminal player shows it readably: a lone LF
// becomes CRLF (no terminal driver did it), and stderr is shown in red
// (SGR 31) to keep it apart from stdout. Input is rendered like output, as
// a terminal's echo would have shown it.
func Plain(stream, data string) string {
	var b strings.Builder
	b.Grow(len(data) + len(data)/8 + 16)
	if stream == Stderr {
		b.WriteString("\x1b[31m")
	}
	for i := 0; i < len(data); i++ {
		if data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(data[i])
	}
	if stream == Stderr {
		b.WriteString("\x1b[0m")
	}
	return b.String()
}
