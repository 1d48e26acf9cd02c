package mssqlproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"

	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/protocol/tunnel"
)

// Certifier asks pamd's server to sign a db-client certificate for a key
// the gateway made, for the given session: the server fills in the
// session's account and bounds the certificate by the session's expiry.
// It returns the certificate (PEM, first in the chain).
type Certifier func(ctx context.Context, sessionID string, csrDER []byte) ([]byte, error)

// windowsLogins is what Kerberos logins keep across connections: each
// account's TGT (as a gokrb5 client that also caches service tickets)
// until it nearly expires, and for pkinit accounts the db-client
// certificate and its key, made here and never sent anywhere. Handle
// binds the gateway's Certifier to a session while its streams run, so
// kerberosToken, which sees only the descriptor, can ask for one.
type windowsLogins struct {
	// resolver finds KDCs (DNS SRV) and their addresses; tests point it
	// at a DNS server of their own.
	resolver   *net.Resolver
	mu         sync.Mutex
	certifiers map[string]*bound // by session
	accounts   map[string]*accountLogin
}

type bound struct {
	certify Certifier
	n       int
}

// accountLogin is one account's cached credentials; its mutex makes
// concurrent first connections share one AS exchange.
type accountLogin struct {
	mu       sync.Mutex
	cl       *client.Client
	tgtUntil time.Time
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	ases     int // AS exchanges made, for tests
}

var windows = &windowsLogins{resolver: net.DefaultResolver, certifiers: map[string]*bound{}, accounts: map[string]*accountLogin{}}

// Renewal margins: a TGT or certificate this close to its end is replaced.
const (
	tgtMargin  = 2 * time.Minute
	certMargin = 5 * time.Minute
)

// bind makes certify the session's Certifier until the returned func runs.
func (w *windowsLogins) bind(session string, certify Certifier) func() {
	if certify == nil {
		return func() {}
	}
	w.mu.Lock()
	b := w.certifiers[session]
	if b == nil {
		b = &bound{certify: certify}
		w.certifiers[session] = b
	}
	b.n++
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if b.n--; b.n == 0 {
			delete(w.certifiers, session)
		}
	}
}

// accountKey names what a cached login depends on: change any of it (a
// new password, another KDC CA) and the cache is not used.
func accountKey(d *tunnel.Descriptor) string {
	m := d.MSSQL
	h := sha256.New()
	for _, s := range []string{d.Resource, d.Account, m.Auth, m.Username, m.Realm, m.KDC, m.Password, m.Keytab, m.UPN, m.SID, m.KDCCA, m.KDCHostname} {
		binary.Write(h, binary.BigEndian, uint32(len(s)))
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (w *windowsLogins) account(d *tunnel.Descriptor) *accountLogin {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.accounts) >= maxAccounts {
		w.sweep(time.Now())
	}
	k := accountKey(d)
	a := w.accounts[k]
	if a == nil {
		a = &accountLogin{}
		w.accounts[k] = a
	}
	return a
}

// maxAccounts is how many accounts' logins are kept before the expired
// ones (an old password's, say) are dropped.
const maxAccounts = 256

// sweep drops the logins whose TGT and certificate have both expired; one
// in use (its mutex held) is kept.
func (w *windowsLogins) sweep(now time.Time) {
	for k, a := range w.accounts {
		if !a.mu.TryLock() {
			continue
		}
		if now.After(a.tgtUntil) && (a.cert == nil || now.After(a.cert.NotAfter)) {
			delete(w.accounts, k)
		}
		a.mu.Unlock()
	}
}

// client returns a gokrb5 client holding a valid TGT for the account,
// made from the cache or by a new AS exchange (password or PKINIT).
func (w *windowsLogins) client(ctx context.Context, d *tunnel.Descriptor) (*client.Client, error) {
	a := w.account(d)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl != nil && time.Now().Before(a.tgtUntil) {
		return a.cl, nil
	}
	var tgt *pkinit.TGT
	var err error
	cfg := krb5Config(d)
	switch d.MSSQL.Auth {
	case "pkinit":
		var kdc string
		if tgt, kdc, err = w.pkinitTGT(ctx, d, a); err == nil {
			// Service tickets come from the KDC that answered, however
			// it was found.
			cfg.LibDefaults.DNSLookupKDC = false
			cfg.Realms = []config.Realm{{Realm: d.MSSQL.Realm, KDC: []string{kdc}}}
		}
	default:
		tgt, err = passwordTGT(d)
	}
	if err != nil {
		return nil, err
	}
	a.ases++
	cc, err := tgt.CCache()
	if err != nil {
		return nil, fmt.Errorf("Kerberos: %w", err)
	}
	cl, err := client.NewFromCCache(cc, cfg, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("Kerberos: the TGT: %w", err)
	}
	a.cl, a.tgtUntil = cl, tgt.EndTime().Add(-tgtMargin)
	return cl, nil
}

// pkinitTGT logs in with the account's db-client certificate, asking the
// server for one when none is held or it nearly expired.
// It returns the TGT and the KDC (host:port) that issued it.
func (w *windowsLogins) pkinitTGT(ctx context.Context, d *tunnel.Descriptor, a *accountLogin) (*pkinit.TGT, string, error) {
	roots := x509.NewCertPool()
	if d.MSSQL.KDCCA == "" || !roots.AppendCertsFromPEM([]byte(d.MSSQL.KDCCA)) {
		return nil, "", fmt.Errorf("Kerberos (PKINIT): account %s has no KDC CA: set --kdc-ca-file to the CA that signed the KDC's certificate", d.Account)
	}
	if a.cert == nil || time.Now().After(a.cert.NotAfter.Add(-certMargin)) {
		if err := w.certify(ctx, d, a); err != nil {
			return nil, "", err
		}
	}
	req, err := pkinit.NewRequest(pkinit.Params{
		Realm: d.MSSQL.Realm, Username: d.MSSQL.Username, Certificate: a.cert, Key: a.key,
		KDCRoots: roots, KDCHostname: d.MSSQL.KDCHostname,
		Lifetime: time.Until(a.cert.NotAfter), // the TGT lives no longer than the certificate
	})
	if err != nil {
		return nil, "", fmt.Errorf("Kerberos (PKINIT): %w", err)
	}
	reply, kdc, err := kdcExchange(ctx, d, req.Marshal())
	if err != nil {
		return nil, "", err
	}
	tgt, err := req.ReadReply(reply)
	if err != nil {
		return nil, "", pkinitError(d, "KDC "+kdc, err)
	}
	return tgt, kdc, nil
}

// certify makes a key and has the server sign a certificate for it.
func (w *windowsLogins) certify(ctx context.Context, d *tunnel.Descriptor, a *accountLogin) error {
	w.mu.Lock()
	b := w.certifiers[d.SessionID]
	w.mu.Unlock()
	if b == nil {
		return errors.New("Kerberos (PKINIT): this gateway cannot ask the server for certificates (server and gateway versions differ?)")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("Kerberos (PKINIT): key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: d.MSSQL.Username}}, key)
	if err != nil {
		return fmt.Errorf("Kerberos (PKINIT): certificate request: %w", err)
	}
	certPEM, err := b.certify(ctx, d.SessionID, csr)
	if err != nil {
		return fmt.Errorf("Kerberos (PKINIT): the server did not sign a certificate for account %s: %w", d.Account, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return errors.New("Kerberos (PKINIT): the server's certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("Kerberos (PKINIT): the server's certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("Kerberos (PKINIT): the server's certificate is for another key")
	}
	a.cert, a.key = cert, key
	return nil
}

// maxKDCReply bounds a KDC's answer.
const maxKDCReply = 1 << 20

// kdcExchange sends an AS-REQ over TCP (RFC 4120 §7.2.2) to the account's
// KDC, or to those DNS SRV records name (_kerberos._tcp.REALM), trying
// each in turn, and returns the answer and the KDC (host:port) that gave it.
func kdcExchange(ctx context.Context, d *tunnel.Descriptor, msg []byte) ([]byte, string, error) {
	var addrs []string
	if d.MSSQL.KDC != "" {
		addrs = []string{kdcAddr(d.MSSQL.KDC)}
	} else {
		_, srvs, err := windows.resolver.LookupSRV(ctx, "kerberos", "tcp", d.MSSQL.Realm)
		if err != nil || len(srvs) == 0 {
			return nil, "", fmt.Errorf("Kerberos: no KDC for %s: DNS has no _kerberos._tcp.%s SRV records; set --kdc on the account", d.MSSQL.Realm, d.MSSQL.Realm)
		}
		sort.SliceStable(srvs, func(i, j int) bool { return srvs[i].Priority < srvs[j].Priority })
		for _, s := range srvs {
			addrs = append(addrs, net.JoinHostPort(trimDot(s.Target), fmt.Sprint(s.Port)))
		}
	}
	var last error
	for _, addr := range addrs {
		reply, ip, err := exchangeTCP(ctx, addr, msg)
		if err == nil {
			return reply, ip, nil
		}
		last = err
	}
	return nil, "", fmt.Errorf("Kerberos: %s is unreachable: %v", kdcWhere(d), last)
}

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// exchangeTCP returns the answer and the address (IP:port) it came from.
func exchangeTCP(ctx context.Context, addr string, msg []byte) ([]byte, string, error) {
	dialer := net.Dialer{Resolver: windows.resolver}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", unwrapDial(err)
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(LoginTimeout)
	}
	c.SetDeadline(deadline)
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)); err != nil {
		return nil, "", err
	}
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, "", fmt.Errorf("no answer: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxKDCReply {
		return nil, "", fmt.Errorf("an answer of %d bytes", size)
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(c, out); err != nil {
		return nil, "", fmt.Errorf("the answer ends early: %w", err)
	}
	return out, c.RemoteAddr().String(), nil
}

// pkinitError says what a PKINIT failure means and how to fix it.
func pkinitError(d *tunnel.Descriptor, where string, err error) error {
	user := d.MSSQL.Username + "@" + d.MSSQL.Realm
	var ke *pkinit.KDCError
	if errors.As(err, &ke) {
		code := fmt.Sprintf("%s, %d", pkinit.ErrorName(ke.Code), ke.Code)
		switch ke.Code {
		case pkinit.CodeClientNotTrusted, pkinit.CodeCantVerifyCertificate:
			return fmt.Errorf("Kerberos (PKINIT): %s does not trust pamd's db-client CA (%s): run pamd ca export --type db-client and add it to NTAuth (Active Directory) or pkinit_anchors (MIT)", where, code)
		case pkinit.CodeRevokedCertificate:
			return fmt.Errorf("Kerberos (PKINIT): %s says the certificate of %s is revoked (%s)", where, user, code)
		case pkinit.CodeRevocationStatusUnknown, pkinit.CodeRevocationStatusUnavailable:
			return fmt.Errorf("Kerberos (PKINIT): %s cannot check whether the certificate is revoked (%s): publish pamd's CRL where it looks (pamd ca crl --type db-client; certutil -dspublish, or MIT pkinit_revoke)", where, code)
		case pkinit.CodeCertificateMismatch, pkinit.CodeClientNameMismatch:
			return fmt.Errorf("Kerberos (PKINIT): certificate mismatch: %s maps the certificate to another account than %s (%s): set --sid to the account's SID (Active Directory's strong mapping), or --upn", where, user, code)
		case pkinit.CodeInvalidCertificate:
			return fmt.Errorf("Kerberos (PKINIT): %s refuses the certificate as invalid (%s): compare the clocks of the gateway, the server and the KDC", where, code)
		case pkinit.CodeKDCNotTrusted:
			return fmt.Errorf("Kerberos (PKINIT): %s has no certificate pamd trusts (%s)", where, code)
		case pkinit.CodeInconsistentKeyPurpose:
			return fmt.Errorf("Kerberos (PKINIT): %s wants another key purpose in the certificate (%s); MIT: pkinit_eku_checking", where, code)
		case pkinit.CodeCPrincipalUnknown:
			return fmt.Errorf("Kerberos (PKINIT): %s does not know the user %s (%s)", where, user, code)
		case pkinit.CodePreauthRequired, 16: // 16: KDC_ERR_PADATA_TYPE_NOSUPP
			return fmt.Errorf("Kerberos (PKINIT): %s does not offer certificate logins for %s (%s): is PKINIT set up on it (MIT: pkinit_identity and pkinit_anchors)?", where, user, code)
		case pkinit.CodeClockSkew:
			return fmt.Errorf("Kerberos (PKINIT): the gateway's clock and %s's differ too much (%s)", where, code)
		}
		if ke.Text != "" {
			code += ": " + ke.Text
		}
		return fmt.Errorf("Kerberos (PKINIT): %s refused the certificate login of %s (%s)", where, user, code)
	}
	switch {
	case errors.Is(err, pkinit.ErrKDCNotTrusted):
		return fmt.Errorf("Kerberos (PKINIT): KDC certificate not trusted: %s's certificate is not signed by the account's --kdc-ca-file", where)
	case errors.Is(err, pkinit.ErrKDCName):
		return fmt.Errorf("Kerberos (PKINIT): %s's certificate names neither krbtgt/%s nor the account's --kdc-hostname: set --kdc-hostname to the KDC's DNS name in it", where, d.MSSQL.Realm)
	}
	return fmt.Errorf("Kerberos (PKINIT): %s: %v", where, err)
}
