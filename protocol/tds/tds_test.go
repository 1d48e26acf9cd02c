package tds

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// specLogin7 is the LOGIN7 example of MS-TDS section 4.2, packet header
// included: user "sa" from host "skostov1", application "OSQL-32".
var specLogin7 = mustHex(`
10 01 00 90 00 00 01 00 88 00 00 00 02 00 09 72
00 10 00 00 00 00 00 07 00 01 00 00 00 00 00 00
E0 03 00 00 00 00 00 00 09 04 00 00 5E 00 08 00
6E 00 02 00 72 00 00 00 72 00 07 00 80 00 00 00
80 00 00 00 80 00 04 00 88 00 00 00 88 00 00 00
00 50 8B E2 B7 8F 88 00 00 00 88 00 00 00 88 00
00 00 00 00 00 00 73 00 6B 00 6F 00 73 00 74 00
6F 00 76 00 31 00 73 00 61 00 4F 00 53 00 51 00
4C 00 2D 00 33 00 32 00 4F 00 44 00 42 00 43 00`)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestSpecLogin7(t *testing.T) {
	m, err := ReadMessage(bytes.NewReader(specLogin7), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeLogin7 || len(m.Payload) != 0x88 {
		t.Fatalf("message type %#x, %d bytes", m.Type, len(m.Payload))
	}
	l, err := ParseLogin7(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := Login7{TDSVersion: 0x72090002, PacketSize: 4096, ClientProgVer: 0x07000000, ClientPID: 0x100,
		OptionFlags1: 0xE0, OptionFlags2: 0x03, ClientLCID: 0x409, ClientID: [6]byte{0, 0x50, 0x8B, 0xE2, 0xB7, 0x8F},
		HostName: "skostov1", UserName: "sa", AppName: "OSQL-32", CltIntName: "ODBC"}
	if l.TDSVersion != want.TDSVersion || l.PacketSize != want.PacketSize || l.ClientPID != want.ClientPID ||
		l.OptionFlags1 != want.OptionFlags1 || l.OptionFlags2 != want.OptionFlags2 || l.ClientLCID != want.ClientLCID ||
		l.ClientID != want.ClientID || l.HostName != want.HostName || l.UserName != want.UserName ||
		l.AppName != want.AppName || l.CltIntName != want.CltIntName || l.Password != "" || l.Database != "" {
		t.Fatalf("decoded %+v", l)
	}
	// Our encoding of the same fields is the spec's bytes.
	if got, err := l.Append(nil); err != nil || !bytes.Equal(got, m.Payload) {
		t.Fatalf("re-encoded LOGIN7 differs from the spec's:\n%x\n%x", got, m.Payload)
	}
}

// TestLogin7ExtensionByVersion: fExtension means FeatureExt from TDS 7.4
// on; before, the bit is reserved (tedious sets it at 7.1 with no
// extension) and ignored, and Append refuses a FeatureExt there.
func TestLogin7ExtensionByVersion(t *testing.T) {
	enc, err := (&Login7{TDSVersion: uint32(Version71Rev1), UserName: "u"}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	enc[27] |= Flags3Extension
	if l, err := ParseLogin7(enc); err != nil || l.FeatureExt != nil || l.UserName != "u" {
		t.Fatalf("7.1 LOGIN7 with the reserved bit: %+v, %v", l, err)
	}
	if _, err := (&Login7{TDSVersion: uint32(Version73B), FeatureExt: []byte{0xFF}}).Append(nil); err == nil {
		t.Fatal("a 7.3 LOGIN7 with FeatureExt encoded")
	}
	if _, err := (&Login7{TDSVersion: uint32(Version80), FeatureExt: []byte{0xFF}}).Append(nil); err != nil {
		t.Fatalf("a TDS 8.0 LOGIN7 with FeatureExt: %v", err)
	}
}

// TestLogin7Layout71: a TDS 7.1 LOGIN7 has an 86-byte fixed part, and
// no ChangePassword or long SSPI; Append refuses those there.
func TestLogin7Layout71(t *testing.T) {
	enc, err := (&Login7{TDSVersion: uint32(Version71Rev1), UserName: "u", Password: "p", Database: "db"}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if at := binary.LittleEndian.Uint16(enc[36:]); at != 86 {
		t.Fatalf("7.1 variable part at %d", at)
	}
	if l, err := ParseLogin7(enc); err != nil || l.UserName != "u" || l.Password != "p" || l.Database != "db" {
		t.Fatalf("7.1 round trip: %+v, %v", l, err)
	}
	for _, bad := range []*Login7{
		{TDSVersion: uint32(Version71), ChangePassword: "next"},
		{TDSVersion: uint32(Version70), SSPI: make([]byte, 0xFFFF)},
	} {
		if _, err := bad.Append(nil); err == nil {
			t.Errorf("%v LOGIN7 with what 7.1 cannot hold encoded", Version(bad.TDSVersion))
		}
	}
}

func TestLogin7RoundTrip(t *testing.T) {
	in := &Login7{TDSVersion: 0x74000004, PacketSize: 8000, OptionFlags2: Flags2IntegratedSecurity,
		HostName: "laptop", UserName: "app", Password: "pä$$wörd-😀", AppName: "sqlcmd", ServerName: "db",
		Language: "us_english", Database: "orders", SSPI: bytes.Repeat([]byte{0x60}, 70000), ChangePassword: "next",
		FeatureExt: []byte{0x0A, 1, 0, 0, 0, 1, 0xFF}}
	enc, err := in.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseLogin7(enc)
	if err != nil {
		t.Fatal(err)
	}
	if out.Password != in.Password || out.ChangePassword != "next" || out.Database != "orders" || len(out.SSPI) != 70000 ||
		!bytes.Equal(out.FeatureExt, in.FeatureExt) || out.OptionFlags3&Flags3Extension == 0 {
		t.Fatalf("round trip: password %q change %q database %q sspi %d bytes feature %x", out.Password, out.ChangePassword, out.Database, len(out.SSPI), out.FeatureExt)
	}
	// The password is not in the encoding in the clear.
	if bytes.Contains(enc, encodeUTF16(in.Password)) {
		t.Fatal("password encoded in the clear")
	}
}

// TestLogin7Limits: fields at MS-TDS's limits round-trip; one character
// more, or a field sized to wrap a 16-bit offset, is refused by the
// encoder, so no offset can wrap onto the password.
func TestLogin7Limits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	full := &Login7{TDSVersion: 0x74000004, PacketSize: 4096, HostName: long(128), UserName: long(128), Password: long(127) + "p",
		AppName: long(128), ServerName: long(128), CltIntName: long(128), Language: long(128), Database: long(128),
		AtchDBFile: long(260), ChangePassword: long(128), SSPI: bytes.Repeat([]byte{7}, 120<<10), FeatureExt: []byte{0x0A, 1, 0, 0, 0, 1, 0xFF}}
	enc, err := full.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseLogin7(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.HostName != full.HostName || back.UserName != full.UserName || back.Password != full.Password || back.AppName != full.AppName ||
		back.ServerName != full.ServerName || back.CltIntName != full.CltIntName || back.Language != full.Language ||
		back.Database != full.Database || back.AtchDBFile != full.AtchDBFile || back.ChangePassword != full.ChangePassword ||
		!bytes.Equal(back.SSPI, full.SSPI) || !bytes.Equal(back.FeatureExt, full.FeatureExt) {
		t.Fatal("fields at the limits changed on the way")
	}
	for name, mut := range map[string]func(l *Login7){
		"HostName":       func(l *Login7) { l.HostName = long(129) },
		"AppName":        func(l *Login7) { l.AppName = long(40000) },
		"Password":       func(l *Login7) { l.Password = long(129) },
		"Database":       func(l *Login7) { l.Database = long(129) },
		"AtchDBFile":     func(l *Login7) { l.AtchDBFile = long(261) },
		"ChangePassword": func(l *Login7) { l.ChangePassword = long(129) },
		"SSPI":           func(l *Login7) { l.SSPI = make([]byte, 128<<10) },
		// The attack: sizes that wrap Database's offset onto the password.
		"wrap": func(l *Login7) {
			l.HostName, l.AppName, l.CltIntName, l.Database = long(30000), long(2000), long(736), "x"
		},
	} {
		l := &Login7{TDSVersion: 0x74000004, UserName: "app", Password: "Stored-Secret-1"}
		mut(l)
		if out, err := l.Append(nil); err == nil {
			t.Errorf("%s: encoded %d bytes", name, len(out))
		} else if !errors.Is(err, ErrLength) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestLogin7RejectsOversizeAndOverlap: the reader refuses a string longer
// than MS-TDS allows and fields that share bytes.
func TestLogin7RejectsOversizeAndOverlap(t *testing.T) {
	ok, err := (&Login7{TDSVersion: 0x74000004, UserName: "app", Password: "secret-pw", Database: "orders"}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseLogin7(ok); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	mutate := func(f func(b []byte)) []byte { b := append([]byte(nil), ok...); f(b); return b }
	for name, b := range map[string][]byte{
		// Database pointed at the password's bytes.
		"overlap": mutate(func(b []byte) { copy(b[68:70], b[44:46]); copy(b[70:72], b[46:48]) }),
		// Database given 129 characters (the message is padded to hold them).
		"oversize": func() []byte {
			b := mutate(func(b []byte) { le.PutUint16(b[68:], uint16(len(b))); le.PutUint16(b[70:], 129) })
			b = append(b, make([]byte, 258)...)
			le.PutUint32(b, uint32(len(b)))
			return b
		}(),
		// SSPI over the user name.
		"sspi": mutate(func(b []byte) { copy(b[78:80], b[40:42]); le.PutUint16(b[80:], 2) }),
	} {
		if l, err := ParseLogin7(b); err == nil {
			t.Errorf("%s: accepted, database %q", name, l.Database)
		}
	}
}

func TestPreloginRoundTripAndRejects(t *testing.T) {
	p := Prelogin{PreloginVersion: {0x10, 0, 0, 0, 0, 0}, PreloginEncryption: {EncryptOff}, PreloginMARS: {0}}
	got, err := ParsePrelogin(p.Append(nil))
	if err != nil || got.Encryption() != EncryptOff || len(got) != 3 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]byte{{}, {0x01, 0, 0x20, 0, 1, 0xFF}, {0x01, 0, 6, 0}, {0x01, 0, 11, 0, 1, 0x01, 0, 11, 0, 1, 0xFF, 0}} {
		if _, err := ParsePrelogin(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestMessagesSplitAndJoin(t *testing.T) {
	payload := bytes.Repeat([]byte("select 1;"), 3000)
	var buf bytes.Buffer
	if err := WriteMessage(&buf, TypeSQLBatch, payload, 512); err != nil {
		t.Fatal(err)
	}
	if buf.Len() <= len(payload)+HeaderLen {
		t.Fatal("not split into packets")
	}
	m, err := ReadMessage(&buf, 0)
	if err != nil || !bytes.Equal(m.Payload, payload) || m.Type != TypeSQLBatch {
		t.Fatalf("rejoined %d bytes, %v", len(m.Payload), err)
	}
	buf.Reset()
	WriteMessage(&buf, TypeSQLBatch, payload, 512)
	if _, err := ReadMessage(&buf, 1000); !errors.Is(err, ErrLength) {
		t.Fatalf("over the bound: %v", err)
	}
	mixed := append((&Packet{Header: Header{Type: TypeSQLBatch}, Payload: []byte("a")}).Append(nil),
		(&Packet{Header: Header{Type: TypeRPC, Status: StatusEOM}, Payload: []byte("b")}).Append(nil)...)
	if _, err := ReadMessage(bytes.NewReader(mixed), 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("mixed types: %v", err)
	}
	if _, err := ReadPacket(bytes.NewReader([]byte{1, 1, 0, 4, 0, 0, 0, 0})); !errors.Is(err, ErrLength) {
		t.Fatalf("short length: %v", err)
	}
}

func TestSQLBatchRoundTrip(t *testing.T) {
	for _, text := range []string{"", "SELECT 1", "ALTER LOGIN [a] WITH PASSWORD = N'ü''x'"} {
		got, err := BatchText(AppendSQLBatch(nil, text))
		if err != nil || got != text {
			t.Errorf("BatchText(AppendSQLBatch(%q)) = %q, %v", text, got, err)
		}
	}
}
