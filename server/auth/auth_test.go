package auth

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/pamd/pamd/store"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterx") {
		t.Fatal("checkPassword disagrees with hashPassword")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$v=1$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA"} {
		if CheckPassword(bad, "x") {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestTOTPOnceAndWithinSkew(t *testing.T) {
	key, _ := totp.Generate(totp.GenerateOpts{Issuer: "pamd", AccountName: "u"})
	now := time.Unix(1_800_000_015, 0)
	code := func(at time.Time) string { c, _ := totp.GenerateCode(key.Secret(), at); return c }
	u := &store.User{MFASecret: key.Secret()}
	if !CheckTOTP(u, code(now), now) {
		t.Fatal("current code refused")
	}
	if CheckTOTP(u, code(now), now) {
		t.Fatal("the same code was accepted twice")
	}
	if CheckTOTP(u, code(now.Add(-30*time.Second)), now) {
		t.Fatal("an older code was accepted after a newer one")
	}
	if !CheckTOTP(u, code(now.Add(30*time.Second)), now) {
		t.Fatal("next step's code refused (clock skew of one step is allowed)")
	}
	if CheckTOTP(u, code(now.Add(5*time.Minute)), now) || CheckTOTP(u, "12345", now) || CheckTOTP(&store.User{}, code(now), now) {
		t.Fatal("a far-off, short, or unenrolled code was accepted")
	}
}
