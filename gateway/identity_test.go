package gateway_test

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
)

func identity(t *testing.T, validity time.Duration) *gateway.Identity {
	p := pkitest.New(t, pki.Leaf{CommonName: "dc1", Usage: x509.ExtKeyUsageClientAuth, Validity: validity})
	return &gateway.Identity{Name: "dc1", ServerURL: "https://127.0.0.1:1", Fingerprint: p.Fingerprint(), CertPEM: p.CertPEM, KeyPEM: p.KeyPEM}
}

// expiredIdentity is a data dir whose certificate expired half an hour ago.
func expiredIdentity(t *testing.T) string {
	dir := t.TempDir()
	if err := identity(t, -30*time.Minute).Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestIdentityFiles: what LoadIdentity makes of each state a data dir can be in.
func TestIdentityFiles(t *testing.T) {
	id := identity(t, time.Hour)
	tests := []struct {
		name    string
		prepare func(dir string)
		ok      bool
		wantErr bool
	}{
		{"empty", func(string) {}, false, false},
		{"saved", func(dir string) { id.Save(dir) }, true, false},
		{"saved before renewal existed (two files)", func(dir string) {
			id.Save(dir)
			os.Remove(filepath.Join(dir, "gateway.pem"))
			os.WriteFile(filepath.Join(dir, "gateway.crt"), id.CertPEM, 0o600)
			os.WriteFile(filepath.Join(dir, "gateway.key"), id.KeyPEM, 0o600)
		}, true, false},
		{"metadata without a certificate", func(dir string) {
			id.Save(dir)
			os.Remove(filepath.Join(dir, "gateway.pem"))
		}, false, true},
		{"malformed metadata", func(dir string) {
			os.WriteFile(filepath.Join(dir, "gateway.json"), []byte("{"), 0o600)
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(dir)
			got, ok, err := gateway.LoadIdentity(dir)
			if ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("LoadIdentity: ok=%v err=%v, want ok=%v error=%v", ok, err, tt.ok, tt.wantErr)
			}
			if !ok {
				return
			}
			if got.Name != id.Name || got.ServerURL != id.ServerURL || string(got.CertPEM) != string(id.CertPEM) || string(got.KeyPEM) != string(id.KeyPEM) {
				t.Fatalf("loaded %+v", got)
			}
			if err := got.CheckExpiry(time.Now()); err != nil {
				t.Fatalf("CheckExpiry of a valid certificate: %v", err)
			}
		})
	}
	if err := id.CheckExpiry(time.Now().Add(2 * time.Hour)); !errors.Is(err, gateway.ErrCertificateExpired) {
		t.Fatalf("CheckExpiry after the end: %v", err)
	}
	bad := &gateway.Identity{CertPEM: []byte("junk")}
	if _, err := bad.Certificate(); err == nil {
		t.Fatal("a junk certificate parsed")
	}
}
