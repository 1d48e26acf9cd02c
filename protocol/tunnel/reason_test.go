package tunnel

import (
	"bytes"
	"testing"
)

// TestTargetFailedCarriesItsReason: the reason of a target-failed reply
// survives the wire, and ok and refused replies keep their layout.
func TestTargetFailedCarriesItsReason(t *testing.T) {
	for _, reason := range []Reason{ReasonOther, ReasonUnreachable, ReasonLoginRefused, ReasonHostKeyMismatch, ReasonProtocol} {
		b := TargetFailed(reason, "why").Append(nil)
		got, err := ReadReply(bytes.NewReader(b))
		if err != nil || got.Status != StatusTargetFailed || got.Reason != reason || got.Message != "why" {
			t.Fatalf("%v: %+v %v", reason, got, err)
		}
	}
	if b := OK().Append(nil); len(b) != 4 {
		t.Fatalf("ok reply is %d bytes, want 4", len(b))
	}
	if b := Refuse("no").Append(nil); len(b) != 6 {
		t.Fatalf("refusal is %d bytes, want 6", len(b))
	}
	if _, err := ReadReply(bytes.NewReader([]byte{1, 2, 0, 0})); err == nil {
		t.Fatal("a target-failed reply without its reason was accepted")
	}
	if Reason(200).String() != "other" {
		t.Fatal("an unknown reason should read as other")
	}
}
