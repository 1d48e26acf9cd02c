package tunnel

import (
	"bytes"
	"testing"
)

func FuzzReadHeader(f *testing.F) {
	for _, k := range []Kind{KindAccess, KindDial, KindControl, KindHello, KindProbe, KindNotice, KindRecord, KindRotate, KindRenew} {
		h, _ := NewHeader(k, Descriptor{SessionID: "s", Target: "127.0.0.1:22", Protocol: "tcp"})
		f.Add(h.Append(nil))
	}
	f.Add([]byte("PAMD\x01\x01\x00\x00\x00\x02{}"))
	f.Add([]byte("PAMD\x01\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadHeader(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever was accepted must encode back to the bytes it came from.
		if got := h.Append(nil); !bytes.Equal(got, in[:len(got)]) {
			t.Fatalf("re-encoding differs: %q vs %q", got, in)
		}
		var d Descriptor
		_ = h.Decode(&d)
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add(OK().Append(nil))
	f.Add(Refuse("session expired").Append(nil))
	f.Add([]byte{1, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadReply(bytes.NewReader(in))
		if err != nil {
			return
		}
		if got := r.Append(nil); !bytes.Equal(got, in[:len(got)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzReadMessage(f *testing.F) {
	b, _ := (&Message{Type: MsgEnded, Reason: "expired"}).Append(nil)
	f.Add(b)
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		if _, err := m.Append(nil); err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
	})
}
