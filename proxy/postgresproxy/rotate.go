package postgresproxy

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"

	"github.com/pamd/pamd/protocol/pgwire"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// scramIterations is the iteration count of the verifiers pamd sets, the
// server's own default (scram_iterations).
const scramIterations = 4096

// Rotation changes a role's password with ALTER ROLE, as the role itself
// or as the rotation account (which needs CREATEROLE).
func (h *Handler) Rotation(r *tunnel.Rotation) (*proxy.TargetOps, error) {
	if r.Account.Postgres == nil || (r.With != nil && r.With.Postgres == nil) {
		return nil, errNoPart
	}
	next := r.Account
	part := *next.Postgres
	part.Password = r.NewPassword
	next.Postgres = &part
	return &proxy.TargetOps{Login: Login, Change: ChangePassword, Next: &next}, nil
}

// Login proves the descriptor's credential logs in.
func Login(ctx context.Context, d *tunnel.Descriptor) error {
	s, err := login(ctx, d)
	if err != nil {
		return err
	}
	return s.close()
}

// ChangePassword sets the account's new password, sent already hashed the
// way the server stores passwords (password_encryption: a SCRAM-SHA-256
// verifier or an MD5 hash), so that the password itself appears in no
// statement log.
func ChangePassword(ctx context.Context, r *tunnel.Rotation) error {
	who := &r.Account
	if r.With != nil {
		who = r.With
	}
	s, err := login(ctx, who)
	if err != nil {
		return err
	}
	defer s.close()
	rows, _, err := s.query("SHOW password_encryption")
	if err != nil {
		return err
	}
	user := r.Account.Postgres.Username
	var hashed string
	switch enc := first(rows); enc {
	case "scram-sha-256":
		if hashed, err = scramVerifier(r.NewPassword); err != nil {
			return err
		}
	case "md5":
		sum := md5.Sum([]byte(r.NewPassword + user))
		hashed = "md5" + hex.EncodeToString(sum[:])
	default:
		return fmt.Errorf("the server stores passwords as %q, which pamd cannot hash ahead (want scram-sha-256 or md5)", enc)
	}
	_, tag, err := s.query("ALTER ROLE " + quoteIdent(user) + " PASSWORD " + quoteLiteral(hashed))
	if err != nil {
		return fmt.Errorf("ALTER ROLE %s as %s: %w", user, who.Postgres.Username, err)
	}
	if tag != "ALTER ROLE" {
		return fmt.Errorf("ALTER ROLE %s: the server answered %q", user, tag)
	}
	return nil
}

// login reaches the server and logs in as d's account.
func login(ctx context.Context, d *tunnel.Descriptor) (*serverConn, error) {
	raw, err := dial(ctx, d)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	s, err := loginServer(raw, d, map[string]string{"application_name": "pamd rotation"})
	stop()
	if err != nil {
		raw.Close()
		return nil, err
	}
	return s, nil
}

func (s *serverConn) close() error {
	terminate, _ := (&pgproto3.Terminate{}).Encode(nil)
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.conn.Write(terminate)
	return s.conn.Close()
}

// query runs one statement with the simple protocol and returns the first
// column of its rows and its CommandComplete tag, or the server's error.
func (s *serverConn) query(sql string) ([]string, string, error) {
	s.conn.SetDeadline(time.Now().Add(LoginTimeout))
	defer s.conn.SetDeadline(time.Time{})
	q, _ := (&pgproto3.Query{String: sql}).Encode(nil)
	if _, err := s.conn.Write(q); err != nil {
		return nil, "", err
	}
	var rows []string
	var tag string
	var failed error
	for {
		typ, body, err := pgwire.ReadMessage(s.br, loginMax)
		if err != nil {
			return nil, "", err
		}
		switch typ {
		case 'D':
			var d pgproto3.DataRow
			if d.Decode(body) == nil && len(d.Values) > 0 {
				rows = append(rows, string(d.Values[0]))
			}
		case 'C':
			var c pgproto3.CommandComplete
			if c.Decode(body) == nil {
				tag = string(c.CommandTag)
			}
		case 'E':
			var e pgproto3.ErrorResponse
			if e.Decode(body) == nil && failed == nil {
				failed = fmt.Errorf("SQLSTATE %s: %s", e.Code, e.Message)
			}
		case 'Z':
			return rows, tag, failed
		}
	}
}

func first(rows []string) string {
	if len(rows) == 0 {
		return ""
	}
	return rows[0]
}

// scramVerifier is what the server stores for a SCRAM-SHA-256 password:
// SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey (base64).
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	client, err := scram.SHA256.NewClient("", password, "")
	if err != nil { // as the server does, a password SASLprep refuses is used as it is
		if client, err = scram.SHA256.NewClientUnprepped("", password, ""); err != nil {
			return "", fmt.Errorf("the new password: %w", err)
		}
	}
	c := client.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(c.StoredKey), b64(c.ServerKey)), nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
