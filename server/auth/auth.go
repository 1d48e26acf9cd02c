package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/pamd/pamd/store"
)

const (
	MinPasswordLen = 12
	TokenTTL       = 12 * time.Hour
	TOTPPeriod     = 30
)

// argon2id parameters: the OWASP minimum for interactive logins (19 MiB, t=2).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(sum)), nil
}

func CheckPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// RandomSecret returns n random bytes as URL-safe base64.
func RandomSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// RandomPassword is easy to paste: letters and digits only, 20 of them.
func RandomPassword() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CheckTOTP accepts a code for the current step or one either side, but only
// for a step later than the last one used: a code works once.
func CheckTOTP(u *store.User, code string, now time.Time) bool {
	code = strings.TrimSpace(code)
	if u.MFASecret == "" || len(code) != 6 {
		return false
	}
	return AcceptCode(u.MFASecret, code, now, &u.MFALastStep)
}

func AcceptCode(secret, code string, now time.Time, lastStep *uint64) bool {
	cur := uint64(now.Unix()) / TOTPPeriod
	for _, step := range []uint64{cur - 1, cur, cur + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(int64(step*TOTPPeriod), 0), totp.ValidateOpts{
			Period: TOTPPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			if step <= *lastStep {
				return false // replay
			}
			*lastStep = step
			return true
		}
	}
	return false
}

// RevokeTokens deletes a user's API tokens but keep (a token hash, or
// ""), and returns how many went. Whatever changes who a user is or what
// they may do (a new password, an MFA reset, disabling, a removed role)
// calls it, so no token issued before the change outlives it.
func RevokeTokens(tx *store.Tx, userID, keep string) (int, error) {
	all, err := tx.Tokens()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range all {
		if t.UserID != userID || t.Hash == keep {
			continue
		}
		if err := tx.DeleteToken(t.Hash); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// TokenID names a token in listings: a prefix of its hash, which says
// nothing about the secret.
func TokenID(hash string) string { return hash[:min(12, len(hash))] }
