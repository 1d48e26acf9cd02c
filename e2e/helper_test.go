package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as small helper servers, run as separate
// processes so benchmarks compare pamd with targets that live in their own
// process, as real targets do. PAMD_E2E_HELPER selects one:
//
//	echo        echoes each connection, half-closing after the client does
//	idle-echo   echo for many connections at once: a 4 KiB buffer each and
//	            no splice(2), which would hold a pipe (two more files) for
//	            each connection and run out of files at a third of the limit
//	sink        reads a connection to its end, then answers the byte count
//	forward=A   relays each connection to A with io.Copy (a plain TCP hop)
//	tls-relay=IN,OUT,A
//	            relays each connection to A, 256 KiB buffers each way; IN
//	            and OUT are tls or tcp: a TLS 1.3 leg accepts or dials with
//	            the certificate in PAMD_E2E_HELPER_TLS (helperTLS)
//
// The helper prints its listen address on the first line of stdout.
func runHelper(kind string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(0)
		}
		go func() {
			defer c.Close()
			switch {
			case kind == "echo":
				io.CopyBuffer(c, c, make([]byte, 256<<10))
				c.(*net.TCPConn).CloseWrite()
			case kind == "idle-echo":
				io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4<<10))
				c.(*net.TCPConn).CloseWrite()
			case kind == "sink":
				n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
				binary.Write(c, binary.BigEndian, n)
			case strings.HasPrefix(kind, "tls-relay="):
				tlsRelay(c, strings.TrimPrefix(kind, "tls-relay="))
			case strings.HasPrefix(kind, "forward="):
				t, err := net.Dial("tcp", strings.TrimPrefix(kind, "forward="))
				if err != nil {
					return
				}
				defer t.Close()
				go func() { io.Copy(t, c); t.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, t)
			}
		}()
	}
}

// startHelper runs a helper process and returns its address.
func startHelper(t testing.TB, kind string) string {
	addr, _ := startHelperProc(t, kind)
	return addr
}

// startHelperProc is startHelper, also returning the helper's process ID.
func startHelperProc(t testing.TB, kind string) (string, int) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PAMD_E2E_HELPER="+kind, "PAMD_E2E_HELPER_TLS="+helperTLS(t))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s: %v", kind, err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

// plainChain is pamd's topology without its crypto: three plain TCP relays
// in their own processes (where connect, server and gateway stand), no
// TLS, no multiplexing, in front of target.
func plainChain(t testing.TB, target string) string {
	addr := target
	for i := 0; i < 3; i++ {
		addr = startHelper(t, "forward="+addr)
	}
	return addr
}

// tlsChain is the floor the issue of pamd's data path set for its
// topology: three relays in their own processes, where connect, server and
// gateway stand, with TLS 1.3 on the two middle legs as pamd has, and
// nothing else (no multiplexing, no records), in front of target. It
// returns the chain's address and its relays' process IDs.
func tlsChain(t testing.TB, target string) (string, []int) {
	addr, last := startHelperProc(t, "tls-relay=tls,tcp,"+target)
	addr, middle := startHelperProc(t, "tls-relay=tls,tls,"+addr)
	addr, first := startHelperProc(t, "tls-relay=tcp,tls,"+addr)
	return addr, []int{first, middle, last}
}

// tlsRelay relays c to the address in spec (IN,OUT,ADDR), with TLS on
// the legs spec says.
func tlsRelay(c net.Conn, spec string) {
	legs := strings.SplitN(spec, ",", 3)
	if len(legs) != 3 {
		return
	}
	cfg := helperTLSConfig()
	if legs[0] == "tls" {
		c = tls.Server(c, cfg)
	}
	t, err := net.Dial("tcp", legs[2])
	if err != nil {
		return
	}
	if legs[1] == "tls" {
		t = tls.Client(t, cfg)
	}
	defer t.Close()
	// The struct wrappers keep io.CopyBuffer to the buffer given, as the
	// floor's definition says, rather than a ReadFrom or WriteTo of TCP.
	go func() {
		io.CopyBuffer(struct{ io.Writer }{t}, struct{ io.Reader }{c}, make([]byte, 256<<10))
		closeWrite(t)
	}()
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{t}, make([]byte, 256<<10))
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

var (
	helperTLSOnce sync.Once
	helperTLSPEM  string
)

// helperTLS is a certificate and key for 127.0.0.1 (PEM, one string) that
// the relays of a tlsChain share: the accepting side presents it and the
// dialling side trusts only it.
func helperTLS(t testing.TB) string {
	helperTLSOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pamd e2e relay"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		helperTLSPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	})
	return helperTLSPEM
}

// helperTLSConfig is a relay's TLS 1.3 configuration from
// PAMD_E2E_HELPER_TLS, read once.
var helperTLSConfig = sync.OnceValue(func() *tls.Config {
	pemBytes := []byte(os.Getenv("PAMD_E2E_HELPER_TLS"))
	cert, err := tls.X509KeyPair(pemBytes, pemBytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper TLS:", err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
})

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }
