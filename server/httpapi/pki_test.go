package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
	"github.com/pamd/pamd/server/servertest"
)

// TestCAExports: the db-client CA's certificate (PEM and DER) and CRL
// through the API, the CRL and certificate at /pki/ without a login, and
// neither the API route without one.
func TestCAExports(t *testing.T) {
	e := servertest.NewWith(t, servertest.Options{NoGateway: true})
	ctx := context.Background()
	get := func(c *apiclient.Client, path string) []byte {
		t.Helper()
		var out []byte
		if err := c.Do(ctx, "GET", path, nil, &out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return out
	}
	block, _ := pem.Decode(get(e.Client, "/api/v1/ca/db-client"))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("db-client CA: no PEM certificate")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA || ca.Subject.CommonName != "pamd db-client CA" {
		t.Fatalf("db-client CA: %v %v", err, ca.Subject)
	}
	der := get(e.Client, "/api/v1/ca/db-client?format=der")
	if c, err := x509.ParseCertificate(der); err != nil || !c.Equal(ca) {
		t.Fatalf("DER export: %v", err)
	}
	crlBlock, _ := pem.Decode(get(e.Client, "/api/v1/ca/db-client/crl"))
	if crlBlock == nil || crlBlock.Type != "X509 CRL" {
		t.Fatal("CRL: no PEM")
	}
	crl, err := x509.ParseRevocationList(crlBlock.Bytes)
	if err != nil || crl.CheckSignatureFrom(ca) != nil {
		t.Fatalf("CRL: %v", err)
	}
	if _, err := x509.ParseCertificate(get(e.Client, "/api/v1/ca/server?format=der")); err != nil {
		t.Fatal(err)
	}

	// The CRL distribution point answers anyone.
	pool := x509.NewCertPool()
	serverCA, _ := pem.Decode(get(e.Client, "/api/v1/ca/server"))
	sc, _ := x509.ParseCertificate(serverCA.Bytes)
	pool.AddCert(sc)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for path, want := range map[string]int{"/pki/db-client.crl": 200, "/pki/db-client.crt": 200, "/pki/none": 404, "/api/v1/ca/db-client": 401} {
		resp, err := anon.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s without a login: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/pki/db-client.crl" {
			if crl, err := x509.ParseRevocationList(body); err != nil || crl.CheckSignatureFrom(ca) != nil {
				t.Fatalf("served CRL: %v", err)
			}
		}
	}
	var none []byte
	if err := e.Client.Do(ctx, "GET", "/api/v1/ca/resource/crl", nil, &none); servertest.Status(err) != 404 {
		t.Fatalf("a CRL of the resource CA: %v", err)
	}

	// Revoking puts the serial on the CRL, in decimal or openssl's hex.
	var out api.RevokeCertificateRequest
	if err := e.Client.Do(ctx, "POST", "/api/v1/ca/db-client/revoke", api.RevokeCertificateRequest{Serial: "0a:0b"}, &out); err != nil || out.Serial != "2571" {
		t.Fatalf("revoke 0a:0b: %v %+v", err, out)
	}
	for _, bad := range []string{"", "x", "-5", "0", strings.Repeat("9", 65)} {
		if err := e.Client.Do(ctx, "POST", "/api/v1/ca/db-client/revoke", api.RevokeCertificateRequest{Serial: bad}, &out); servertest.Status(err) != 400 {
			t.Fatalf("serial %q: %v", bad, err)
		}
	}
	crl, err = x509.ParseRevocationList(get(e.Client, "/api/v1/ca/db-client/crl?format=der"))
	if err != nil || len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Int64() != 2571 {
		t.Fatalf("the CRL after a revocation: %v", err)
	}
}
