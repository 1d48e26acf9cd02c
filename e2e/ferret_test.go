package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
)

// ferret is a real FerretDB (MongoDB wire protocol, SQLite storage) with
// authentication enforced, started by a test.
type ferret struct {
	addr    string // plain listener
	tlsAddr string // TLS listener, when started with TLS
	caFile  string // CA of the TLS listener's certificate
	uri     string
	stop    func()
}

const mongoAdminPassword = "Mongo-Admin-e2e-1"

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func startFerret(t *testing.T, withTLS bool) *ferret {
	bin := filepath.Join(repoRoot(), ".cache", "peers", "ferretdb")
	_, err := os.Stat(bin)
	needPeers(t, "FerretDB ("+bin+")", err == nil)
	dir := t.TempDir()
	f := &ferret{addr: freePort(t)}
	f.uri = "mongodb://" + f.addr
	args := []string{"--handler=sqlite", "--sqlite-url=file:" + filepath.Join(dir, "data") + "/", "--state-dir=" + filepath.Join(dir, "state"),
		"--listen-addr=" + f.addr, "--debug-addr=" + freePort(t), "--telemetry=disable", "--log-level=warn",
		"--test-enable-new-auth", "--setup-database=admin", "--setup-username=admin", "--setup-password=" + mongoAdminPassword}
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	if withTLS {
		f.tlsAddr = freePort(t)
		p := pkitest.New(t, pki.Leaf{CommonName: "ferretdb"})
		f.caFile = filepath.Join(dir, "ca.pem")
		os.WriteFile(f.caFile, p.CAPEM, 0o600)
		os.WriteFile(filepath.Join(dir, "cert.pem"), p.CertPEM, 0o600)
		os.WriteFile(filepath.Join(dir, "key.pem"), p.KeyPEM, 0o600)
		args = append(args, "--listen-tls="+f.tlsAddr, "--listen-tls-cert-file="+filepath.Join(dir, "cert.pem"), "--listen-tls-key-file="+filepath.Join(dir, "key.pem"))
	}
	cmd := exec.Command(bin, args...)
	logFile, _ := os.Create(filepath.Join(dir, "ferretdb.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	f.stop = func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() }) }
	t.Cleanup(f.stop)
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range []string{f.addr, f.tlsAddr} {
		for a != "" {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(filepath.Join(dir, "ferretdb.log"))
				t.Fatalf("FerretDB did not listen on %s:\n%s", a, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return f
}
