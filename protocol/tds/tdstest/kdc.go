package tdstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Realm is the Kerberos realm of the stand-in's domain.
const Realm = "EXAMPLE.TEST"

// KDC is a real MIT Kerberos KDC on a loopback port with a private realm,
// the domain controller of the stand-in's Windows logins.
type KDC struct {
	Addr     string // host:port, TCP and UDP
	Krb5Conf string // a krb5.conf pointing at it
	// KDCCA is the CA (PEM) that signed the KDC's PKINIT certificate;
	// empty without PKINIT.
	KDCCA []byte
	dir   string
	env   []string
}

// StartKDC creates a realm in a temporary directory and starts krb5kdc. It
// skips the test when MIT Kerberos is not installed, unless
// PAMD_REQUIRE_PEERS is set (scripts/peers installs it).
func StartKDC(t testing.TB) *KDC {
	t.Helper()
	return startKDC(t, nil)
}

// startKDC starts the KDC; with pk set, with PKINIT (pkinitkdc.go).
func startKDC(t testing.TB, pk *PKINIT) *KDC {
	t.Helper()
	for _, bin := range []string{"/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local"} {
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
				t.Fatalf("%s is required; scripts/peers installs krb5-kdc and krb5-admin-server", bin)
			}
			t.Skipf("%s not installed; scripts/peers installs it", bin)
		}
	}
	// The port is free when freePort returns, but something else may
	// bind it (or use it as a connection's local port) before krb5kdc
	// does: then the KDC says so in its log, and it is started again on
	// another port, in a new directory.
	for attempt := 1; ; attempt++ {
		k, ok := tryStartKDC(t, pk)
		if ok {
			return k
		}
		if attempt == 5 {
			t.Fatalf("krb5kdc could not bind a port in 5 tries:\n%s", k.Log())
		}
	}
}

// tryStartKDC starts a KDC on a free port; false when it could not bind it.
func tryStartKDC(t testing.TB, pk *PKINIT) (*KDC, bool) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	k := &KDC{Addr: "127.0.0.1:" + strconv.Itoa(port), Krb5Conf: filepath.Join(dir, "krb5.conf"), dir: dir}
	kdcConf := filepath.Join(dir, "kdc.conf")
	write(t, k.Krb5Conf, fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 udp_preference_limit = 1
 rdns = false
 ticket_lifetime = 10h
[realms]
 %[1]s = {
  kdc = %[2]s
 }
[domain_realm]
 .example.test = %[1]s
 example.test = %[1]s
`, Realm, k.Addr))
	realmExtra := ""
	if pk != nil {
		realmExtra = k.configurePKINIT(t, pk)
	}
	write(t, kdcConf, fmt.Sprintf(`[kdcdefaults]
 kdc_ports = %[2]d
 kdc_tcp_ports = %[2]d
[realms]
 %[1]s = {
  database_name = %[3]s/principal
  key_stash_file = %[3]s/stash
  acl_file = %[3]s/kadm5.acl
  kdc_listen = 127.0.0.1:%[2]d
  kdc_tcp_listen = 127.0.0.1:%[2]d
  default_principal_flags = +preauth
  max_life = 10h
%[4]s }
[logging]
 kdc = FILE:%[3]s/kdc.log
`, Realm, port, dir, realmExtra))
	write(t, filepath.Join(dir, "kadm5.acl"), "")
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5_KDC_PROFILE="+kdcConf)
	k.run(t, "/usr/sbin/kdb5_util", "create", "-r", Realm, "-s", "-P", "kdc-master-"+strconv.Itoa(port))
	cmd := exec.Command("/usr/sbin/krb5kdc", "-n", "-P", filepath.Join(dir, "kdc.pid"))
	cmd.Env = k.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// Ready once it says so, with both sockets bound: a connection
		// that succeeds may reach another process holding the port.
		log := k.Log()
		if strings.Contains(log, "Cannot bind") {
			stop()
			return k, false
		}
		if strings.Contains(log, "commencing operation") {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "kdc.log"))
			t.Fatalf("krb5kdc did not listen on %s:\n%s", k.Addr, log)
		}
	}
	if pk != nil && strings.Contains(k.Log(), "pkinit failed to initialize") {
		t.Fatalf("the KDC's PKINIT plugin did not start:\n%s", k.Log())
	}
	return k, true
}

// AddUser creates a principal with a password.
func (k *KDC) AddUser(t testing.TB, name, password string) {
	k.run(t, "/usr/sbin/kadmin.local", "-q", fmt.Sprintf("addprinc -pw %s %s@%s", password, name, Realm))
}

// Log is the KDC's log so far.
func (k *KDC) Log() string {
	b, _ := os.ReadFile(filepath.Join(k.dir, "kdc.log"))
	return string(b)
}

// AddService creates a service principal (an SPN such as
// MSSQLSvc/sql.example.test:1433) and returns its keytab.
func (k *KDC) AddService(t testing.TB, spn string) *keytab.Keytab {
	file := filepath.Join(k.dir, strings.NewReplacer("/", "_", ":", "_").Replace(spn)+".keytab")
	k.run(t, "/usr/sbin/kadmin.local", "-q", fmt.Sprintf("addprinc -randkey %s@%s", spn, Realm))
	k.run(t, "/usr/sbin/kadmin.local", "-q", fmt.Sprintf("ktadd -k %s %s@%s", file, spn, Realm))
	kt, err := keytab.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return kt
}

// Env is the environment for MIT tools (kinit, FreeTDS) to use this realm.
func (k *KDC) Env() []string { return k.env }

func (k *KDC) run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = k.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func write(t testing.TB, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
