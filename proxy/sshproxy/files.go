package sshproxy

import (
	"bytes"
	"encoding/binary"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/pamd/pamd/protocol/sftp"
	"github.com/pamd/pamd/protocol/tunnel"
)

// fileTracker watches a channel's bytes for file transfers. feed must never
// block the relay: a tracker that cannot parse stops tracking. A tracker of
// a trusted transfer, whose bytes are not recorded otherwise, has a raw
// callback: what it cannot account for as file operations (the rest of the
// stream once it cannot parse, what is left over at the end) goes there as
// "i" and "o" records, so nothing passes unrecorded.
type fileTracker interface {
	feed(fromClient bool, p []byte)
	finish()
}

// sftpTracker turns SFTP requests and replies into file records: one per
// file opened and closed (upload or download, with bytes moved), and one per
// remove, rename, mkdir and rmdir.
type sftpTracker struct {
	rec func(tunnel.Record)
	raw func(tunnel.Record) // nil: the channel records the bytes itself

	mu          sync.Mutex
	buf         [2][]byte // pending bytes: [0] from the target, [1] from the client
	broken      bool
	pendingOpen map[uint32]*openFile
	pendingRead map[uint32]*openFile
	handles     map[string]*openFile
}

type openFile struct {
	path        string
	write       bool
	read, wrote int64
}

func newSFTPTracker(rec, raw func(tunnel.Record)) *sftpTracker {
	return &sftpTracker{rec: rec, raw: raw, pendingOpen: map[uint32]*openFile{}, pendingRead: map[uint32]*openFile{}, handles: map[string]*openFile{}}
}

func (t *sftpTracker) feed(fromClient bool, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken {
		emitRaw(t.raw, fromClient, p)
		return
	}
	dir := 0
	if fromClient {
		dir = 1
	}
	t.buf[dir] = append(t.buf[dir], p...)
	for len(t.buf[dir]) >= 4 {
		n := binary.BigEndian.Uint32(t.buf[dir])
		if n < 1 || n > sftp.MaxPacket {
			t.breakOff()
			return
		}
		if uint32(len(t.buf[dir])-4) < n {
			return // wait for the rest
		}
		pkt, err := sftp.ReadPacket(bytes.NewReader(t.buf[dir][:4+n]))
		if err != nil {
			t.breakOff()
			return
		}
		t.buf[dir] = append(t.buf[dir][:0], t.buf[dir][4+n:]...)
		if fromClient {
			t.request(pkt)
		} else {
			t.reply(pkt)
		}
	}
}

// breakOff stops parsing; the bytes not parsed yet, both ways, are
// recorded as they are, and so is everything after them.
func (t *sftpTracker) breakOff() {
	t.broken = true
	emitRaw(t.raw, true, t.buf[1])
	emitRaw(t.raw, false, t.buf[0])
	t.buf = [2][]byte{}
}

// emitRaw records bytes a tracker did not account for.
func emitRaw(raw func(tunnel.Record), fromClient bool, p []byte) {
	if raw == nil || len(p) == 0 {
		return
	}
	typ := "o"
	if fromClient {
		typ = "i"
	}
	raw(tunnel.Record{Type: typ, Data: string(p)})
}

func (t *sftpTracker) request(p *sftp.Packet) {
	f := p.Fields()
	switch p.Type {
	case sftp.TypeOpen:
		name := f.Str()
		flags := f.Uint32()
		if f.Err == nil {
			t.pendingOpen[p.ID] = &openFile{path: name, write: flags&sftp.FlagWrite != 0}
		}
	case sftp.TypeWrite:
		h := f.Str()
		f.Uint64()
		data := f.Bytes()
		if of := t.handles[h]; of != nil && f.Err == nil {
			of.wrote += int64(len(data))
		}
	case sftp.TypeRead:
		if of := t.handles[f.Str()]; of != nil && f.Err == nil {
			t.pendingRead[p.ID] = of
		}
	case sftp.TypeClose:
		h := f.Str()
		if of := t.handles[h]; of != nil {
			delete(t.handles, h)
			t.emit(of)
		}
	case sftp.TypeRemove, sftp.TypeMkdir, sftp.TypeRmdir:
		name := f.Str()
		op := map[byte]string{sftp.TypeRemove: "remove", sftp.TypeMkdir: "mkdir", sftp.TypeRmdir: "rmdir"}[p.Type]
		if f.Err == nil {
			t.rec(tunnel.Record{Type: "file", Op: op, Path: name})
		}
	case sftp.TypeRename:
		from, to := f.Str(), f.Str()
		if f.Err == nil {
			t.rec(tunnel.Record{Type: "file", Op: "rename", Path: from + " -> " + to})
		}
	}
}

func (t *sftpTracker) reply(p *sftp.Packet) {
	f := p.Fields()
	switch p.Type {
	case sftp.TypeHandle:
		h := f.Str()
		if of := t.pendingOpen[p.ID]; of != nil && f.Err == nil {
			t.handles[h] = of
		}
		delete(t.pendingOpen, p.ID)
	case sftp.TypeData:
		data := f.Bytes()
		if of := t.pendingRead[p.ID]; of != nil && f.Err == nil {
			of.read += int64(len(data))
		}
		delete(t.pendingRead, p.ID)
	case sftp.TypeStatus:
		delete(t.pendingOpen, p.ID)
		delete(t.pendingRead, p.ID)
	}
}

func (t *sftpTracker) emit(of *openFile) {
	if of.write {
		t.rec(tunnel.Record{Type: "file", Op: "upload", Path: of.path, Size: of.wrote})
	} else {
		t.rec(tunnel.Record{Type: "file", Op: "download", Path: of.path, Size: of.read})
	}
}

func (t *sftpTracker) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.broken { // a packet cut short by the end
		emitRaw(t.raw, true, t.buf[1])
		emitRaw(t.raw, false, t.buf[0])
		t.buf = [2][]byte{}
	}
	for h, of := range t.handles {
		delete(t.handles, h)
		t.emit(of)
	}
}

// scpTracker follows the legacy SCP protocol (scp -O): "scp -t PATH" takes
// files from the client, "scp -f PATH" sends them; each file is announced by
// a line "C<mode> <size> <name>" and followed by its bytes and a NUL.
type scpTracker struct {
	rec    func(tunnel.Record)
	raw    func(tunnel.Record) // nil: the channel records the bytes itself
	upload bool
	target string
	mu     sync.Mutex
	line   []byte
	skip   int64 // file bytes (and the NUL) still to pass
	dirs   []string
	broken bool
}

func newSCPTracker(command string, rec, raw func(tunnel.Record)) *scpTracker {
	f := strings.Fields(command)
	if len(f) < 2 || path.Base(f[0]) != "scp" {
		return nil
	}
	t := &scpTracker{rec: rec, raw: raw}
	for _, a := range f[1:] {
		switch {
		case a == "-t":
			t.upload = true
		case a == "-f":
		case strings.HasPrefix(a, "-"):
		default:
			t.target = a
		}
	}
	if !t.upload && !strings.Contains(command, " -f") {
		return nil
	}
	return t
}

// feed follows the direction that carries files and skips their contents.
// With a raw callback, everything but the file contents is recorded: the
// control lines, and the acknowledgements that are not plain NULs.
func (t *scpTracker) feed(fromClient bool, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fromClient != t.upload || t.broken {
		if t.broken || bytes.ContainsFunc(p, func(r rune) bool { return r != 0 }) {
			emitRaw(t.raw, fromClient, p)
		}
		return
	}
	var other []byte // what is not file contents
	for len(p) > 0 && !t.broken {
		if t.skip > 0 {
			n := min(int64(len(p)), t.skip)
			t.skip -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.line = append(t.line, p...)
			p = nil
			if len(t.line) > 4096 {
				t.broken = true
				other, t.line = append(other, t.line...), nil
			}
			break
		}
		line := string(append(t.line, p[:i]...))
		other = append(other, line+"\n"...)
		t.line, p = t.line[:0], p[i+1:]
		t.control(line)
	}
	emitRaw(t.raw, fromClient, append(other, p...)) // p: what follows a break
}

func (t *scpTracker) control(line string) {
	if line == "" {
		return
	}
	switch line[0] {
	case 'C', 'D':
		f := strings.SplitN(line[1:], " ", 3)
		if len(f) != 3 {
			t.broken = true
			return
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			t.broken = true
			return
		}
		if line[0] == 'D' {
			t.dirs = append(t.dirs, f[2])
			return
		}
		op := "download"
		if t.upload {
			op = "upload"
		}
		name := path.Join(append(append([]string{}, t.dirs...), f[2])...)
		t.rec(tunnel.Record{Type: "file", Op: op, Path: name, Data: "scp " + t.target, Size: size})
		t.skip = size + 1
	case 'E':
		if len(t.dirs) > 0 {
			t.dirs = t.dirs[:len(t.dirs)-1]
		}
	}
}

func (t *scpTracker) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	emitRaw(t.raw, t.upload, t.line) // a control line cut short by the end
	t.line = nil
}

// transferCommand says whether an exec'd command runs one file transfer
// program and nothing else: "scp" (scp -t or -f), "sftp" (sftp-server) or
// "rsync" (rsync --server), or "" for anything else. Only then is the data
// of the channel file contents, recorded as file operations and not as
// bytes. Any shell syntax (separators, substitutions, redirections, quotes)
// could start another program after it, so a command with some is not a
// transfer; the program is a bare name or lives under a system directory.
func transferCommand(command string) string {
	if strings.ContainsAny(command, "`$;&|<>()\\'\"\n\r") {
		return ""
	}
	f := strings.Fields(command)
	if len(f) > 0 && f[0] == "exec" {
		f = f[1:]
	}
	if len(f) == 0 {
		return ""
	}
	prog := f[0]
	if strings.Contains(prog, "/") {
		clean := path.Clean(prog)
		if clean != prog || !(strings.HasPrefix(prog, "/usr/") || strings.HasPrefix(prog, "/bin/") || strings.HasPrefix(prog, "/sbin/")) {
			return ""
		}
	}
	switch path.Base(prog) {
	case "scp":
		return "scp"
	case "sftp-server":
		return "sftp"
	case "rsync":
		if len(f) < 2 || f[1] != "--server" {
			return ""
		}
		for _, a := range f[2:] {
			if strings.HasPrefix(a, "--daemon") || strings.HasPrefix(a, "--config") {
				return "" // a daemon runs what its configuration says
			}
		}
		return "rsync"
	}
	return ""
}
