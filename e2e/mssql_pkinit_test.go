package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tds/tdstest"
)

// TestMSSQLPKINIT: an account with auth pkinit stores no secret; the
// gateway logs in as alice with a certificate pamd's db-client CA signs
// per session for a key the gateway made, a TGT from a real MIT KDC whose
// pkinit_anchors is what pamd ca export printed, and a service ticket the
// SQL Server stand-in checks with its keytab. go-sqlcmd, tsql and
// go-mssqldb log in through pamd connect; later connections reuse the TGT.
// The KDC's settings an AD certificate needs (scLogin EKU, UPN) and
// mandatory CRL checking against pamd's CRL work too; a KDC that does not
// trust the CA, and a KDC certificate not from --kdc-ca-file, reach the
// client as pamd errors that say the fix. No kinit runs.
func TestMSSQLPKINIT(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()

	caPEM := e.ok("", "ca", "export", "--type", "db-client")
	block, _ := pem.Decode([]byte(caPEM))
	if block == nil {
		t.Fatalf("pamd ca export: no PEM:\n%s", caPEM)
	}
	dbCA, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !dbCA.IsCA {
		t.Fatalf("db-client CA: %v", err)
	}
	if der := e.ok("", "ca", "export", "--type", "db-client", "--format", "der"); der != string(block.Bytes) {
		t.Fatal("pamd ca export --format der is not the PEM's certificate")
	}
	crlPEM := e.ok("", "ca", "crl", "--type", "db-client")
	cb, _ := pem.Decode([]byte(crlPEM))
	if cb == nil {
		t.Fatalf("pamd ca crl: no PEM:\n%s", crlPEM)
	}
	if crl, err := x509.ParseRevocationList(cb.Bytes); err != nil || crl.CheckSignatureFrom(dbCA) != nil {
		t.Fatalf("pamd ca crl: %v", err)
	}
	if out := e.fails("", "ca", "crl", "--type", "server"); !strings.Contains(out, "only the db-client CA") {
		t.Fatalf("a CRL of the server CA: %s", out)
	}
	// The CRL distribution point answers without a login.
	serverCA := x509.NewCertPool()
	serverCA.AppendCertsFromPEM([]byte(e.ok("", "ca", "export", "--type", "server")))
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA}}, Timeout: 10 * time.Second}
	resp, err := anon.Get(e.url + "/pki/db-client.crl")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if crl, err := x509.ParseRevocationList(served); err != nil || crl.CheckSignatureFrom(dbCA) != nil {
		t.Fatalf("the served CRL: %v", err)
	}

	// One KDC and one stand-in (with that KDC's service keytab) per case.
	add := func(name string, pk tdstest.PKINIT, kdcCA func(*tdstest.KDC) []byte, extra ...string) *tdstest.KDC {
		t.Helper()
		kdc := tdstest.StartPKINITKDC(t, pk)
		kdc.AddCertUser(t, "alice")
		s, _ := standin(t, tds.EncryptOff)
		s.Keytab = kdc.AddService(t, standinSPN)
		e.addMSSQL(name, s, "--tls-reject-unauthorized=false")
		caFile := filepath.Join(dir, name+"-kdc-ca.pem")
		if err := os.WriteFile(caFile, kdcCA(kdc), 0o600); err != nil {
			t.Fatal(err)
		}
		e.ok("", append([]string{"accounts", "add", name + "/alice", "--auth", "pkinit", "--realm", "example.test", "--spn", standinSPN,
			"--kdc", kdc.Addr, "--kdc-ca-file", caFile, "--username", "alice"}, extra...)...)
		return kdc
	}
	own := func(k *tdstest.KDC) []byte { return k.KDCCA }
	plain := add("pk", tdstest.PKINIT{ClientCA: []byte(caPEM)}, own)
	ad := add("pkad", tdstest.PKINIT{ClientCA: []byte(caPEM), ADStyle: true, CRL: []byte(crlPEM)}, own,
		"--upn", "alice@EXAMPLE.TEST", "--sid", "S-1-5-21-1004336348-1177238915-682003330-1001")
	otherCA := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: []byte(caPEM)}).KDCCA // a CA that signed another KDC
	untrusting := add("pkuntrusted", tdstest.PKINIT{ClientCA: otherCA}, own)
	add("pkwrongca", tdstest.PKINIT{ClientCA: []byte(caPEM)}, func(*tdstest.KDC) []byte { return otherCA })

	if out := e.fails("", "accounts", "add", "pk/x", "--auth", "pkinit", "--realm", "R", "--spn", standinSPN, "--username", "x"); !strings.Contains(out, "--kdc-ca-file") {
		t.Fatalf("pkinit without --kdc-ca-file: %s", out)
	}
	if out := e.fails("secret\n", "accounts", "add", "pk/y", "--auth", "pkinit", "--realm", "R", "--spn", standinSPN, "--username", "y", "--kdc-ca-file", filepath.Join(dir, "pk-kdc-ca.pem"), "--password-stdin"); !strings.Contains(out, "stores no secret") {
		t.Fatalf("pkinit with a password: %s", out)
	}
	if out := e.fails("", "accounts", "add", "pk/z", "--auth", "pkinit", "--realm", "R", "--spn", standinSPN, "--username", "z", "--kdc-ca-file", filepath.Join(dir, "pk-kdc-ca.pem"), "--sid", "S-1-x"); !strings.Contains(out, "--sid") {
		t.Fatalf("pkinit with a bad SID: %s", out)
	}

	// resources test reaches the server and says why it does not log in
	// with a pkinit account (no live session to sign its certificate for).
	if out := e.ok("", "resources", "test", "pk"); !strings.Contains(out, "log in as account alice") || !strings.Contains(out, "not tried: a pkinit account") {
		t.Fatalf("resources test of a pkinit account:\n%s", out)
	}

	script := e.ok("", "resources", "ad-setup", "pkad")
	for _, want := range []string{"certutil -f -dspublish $caFile NTAuthCA", "certutil -f -dspublish $caFile RootCA",
		strings.TrimSpace(caPEM), "-----BEGIN X509 CRL-----", "SID S-1-5-21-1004336348-1177238915-682003330-1001"} {
		if !strings.Contains(script, want) {
			t.Fatalf("pamd resources ad-setup lacks %q:\n%s", want, script)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	query := func(c *mssqlConnection) error {
		var n int
		err := sqlDB(t, c.addr(), url.Values{}).QueryRowContext(ctx, "SELECT 3").Scan(&n)
		if err == nil && n != 3 {
			err = errors.New("SELECT 3 answered " + strconv.Itoa(n))
		}
		return err
	}

	c := e.connectMSSQL("pk/alice")
	port := strconv.Itoa(c.Port)
	if err := query(c); err != nil {
		t.Fatalf("go-mssqldb through a pkinit account: %v\nKDC log:\n%s", err, plain.Log())
	}
	sqlcmd := lookPeer(t, "sqlcmd", filepath.Join(repoRoot(), ".cache", "peers", "sqlcmd"))
	if out, err := exec.CommandContext(ctx, sqlcmd, "-S", "127.0.0.1,"+port, "-Q", "SELECT N'sqlcmd by certificate'").CombinedOutput(); !strings.Contains(string(out), "sqlcmd by certificate") {
		t.Fatalf("sqlcmd (%v):\n%s", err, out)
	}
	tsql := exec.CommandContext(ctx, lookPeer(t, "tsql", ""), "-H", "127.0.0.1", "-p", port, "-U", "pamd", "-P", "")
	tsql.Env, tsql.Stdin = append(os.Environ(), "TDSVER=7.4"), strings.NewReader("select N'tsql by certificate'\ngo\nexit\n")
	if out, _ := tsql.CombinedOutput(); !strings.Contains(string(out), "tsql by certificate") {
		t.Fatalf("tsql:\n%s", out)
	}
	// Three clients, one AS exchange: the TGT is reused.
	if n := strings.Count(plain.Log(), "AS_REQ"); n != 1 || !strings.Contains(plain.Log(), "ISSUE: authtime") {
		t.Fatalf("%d AS exchanges for three logins, want 1:\n%s", n, plain.Log())
	}
	c.proc.cmd.Process.Signal(os.Interrupt)

	c = e.connectMSSQL("pkad/alice")
	if err := query(c); err != nil {
		t.Fatalf("AD-style KDC settings with CRL checking: %v\nKDC log:\n%s", err, ad.Log())
	}
	c.proc.cmd.Process.Signal(os.Interrupt)

	for _, tt := range []struct{ account, want string }{
		{"pkuntrusted/alice", "pamd: Kerberos (PKINIT): KDC " + untrusting.Addr + " does not trust pamd's db-client CA"},
		{"pkuntrusted/alice", "run pamd ca export --type db-client and add it to NTAuth (Active Directory) or pkinit_anchors (MIT)"},
		{"pkwrongca/alice", "pamd: Kerberos (PKINIT): KDC certificate not trusted"},
	} {
		c := e.connectMSSQL(tt.account)
		err := query(c)
		var me mssql.Error
		if !errors.As(err, &me) || !strings.Contains(me.Message, tt.want) {
			t.Fatalf("%s: got %v, want a TDS error containing %q", tt.account, err, tt.want)
		}
		c.proc.cmd.Process.Signal(os.Interrupt)
	}

	audit := e.ok("", "audit", "list", "-o", "json")
	m := regexp.MustCompile(`certificate for alice@EXAMPLE\.TEST, serial (\d+)`).FindStringSubmatch(audit)
	if !strings.Contains(audit, "dbclient.issue") || m == nil {
		t.Fatalf("no dbclient.issue with a serial in the audit log:\n%s", audit)
	}
	// Revoked, the certificate is on the CRL pamd serves and exports.
	if out := e.ok("", "ca", "revoke", "--type", "db-client", "--serial", m[1]); !strings.Contains(out, m[1]+" revoked") {
		t.Fatalf("pamd ca revoke: %s", out)
	}
	cb, _ = pem.Decode([]byte(e.ok("", "ca", "crl", "--type", "db-client")))
	crl, err := x509.ParseRevocationList(cb.Bytes)
	if err != nil || len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.String() != m[1] {
		t.Fatalf("the CRL after revoking %s: %v %+v", m[1], err, crl)
	}
	if out := e.fails("", "ca", "revoke", "--type", "db-client", "--serial", "not-a-serial"); !strings.Contains(out, "serial") {
		t.Fatalf("a bad serial: %s", out)
	}
	if strings.Contains(e.allOutput(), "PRIVATE KEY") {
		t.Fatal("a private key is in a process's output")
	}
}

// TestMSSQLKerberosKeytab: a Kerberos account with a keytab in place of a
// password (stored sealed, never shown) logs in through pamd connect; a
// keytab without the account's key is refused when it is added.
func TestMSSQLKerberosKeytab(t *testing.T) {
	t.Parallel()
	kdc := tdstest.StartKDC(t)
	kt, err := kdc.AddService(t, "svc_kt").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := standin(t, tds.EncryptOff)
	s.Keytab = kdc.AddService(t, standinSPN)
	e := newEnv(t)
	e.addMSSQL("ktsql", s, "--tls-reject-unauthorized=false")
	file := filepath.Join(t.TempDir(), "svc_kt.keytab")
	if err := os.WriteFile(file, kt, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := e.fails("", "accounts", "add", "ktsql/other", "--auth", "kerberos", "--realm", "EXAMPLE.TEST", "--spn", standinSPN,
		"--kdc", kdc.Addr, "--username", "someone", "--keytab-file", file); !strings.Contains(out, "holds no key of someone@EXAMPLE.TEST") {
		t.Fatalf("a keytab of another principal: %s", out)
	}
	e.ok("", "accounts", "add", "ktsql/svc", "--auth", "kerberos", "--realm", "example.test", "--spn", standinSPN,
		"--kdc", kdc.Addr, "--username", "svc_kt", "--keytab-file", file)
	listed := e.ok("", "accounts", "list", "ktsql", "-o", "json")
	if !strings.Contains(listed, `"has_keytab": true`) && !strings.Contains(listed, `"has_keytab":true`) {
		t.Fatalf("accounts list does not say the keytab is stored:\n%s", listed)
	}
	c := e.connectMSSQL("ktsql/svc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int
	if err := sqlDB(t, c.addr(), url.Values{}).QueryRowContext(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
		t.Fatalf("a keytab account: %d %v", n, err)
	}
	c.proc.cmd.Process.Signal(os.Interrupt)
	if b64 := base64.StdEncoding.EncodeToString(kt); strings.Contains(e.allOutput(), b64[:40]) || strings.Contains(listed, b64[:40]) {
		t.Fatal("the keytab is in a process's output")
	}
}
