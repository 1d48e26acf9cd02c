package httpapi

import (
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"strings"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/store"
)

// The CAs' certificates and the db-client CA's CRL, for the machines that
// must trust them: KDCs and Active Directory's NTAuth store trust the
// db-client CA; SQL Server clients the resource CA.

// DBClientCRLPath is where the db-client CA's CRL is served without a
// login (DER): the CRL distribution point of its certificates.
const DBClientCRLPath = "/pki/db-client.crl"

// caCertificate returns the PEM certificate of a CA by its type and,
// while it is rotated, the next one's after it (ca.Bundle).
func (s *API) caCertificate(typ string) ([]byte, error) {
	switch typ {
	case ca.TypeDBClient, ca.TypeServer, ca.TypeResource:
		return s.ca.Bundle(typ), nil
	}
	return nil, api.Errorf(http.StatusNotFound, "no CA of type %q: want db-client, server or resource", typ)
}

// writePEMOrDER answers with der as PEM (the default) or, with
// ?format=der, as DER.
func writePEMOrDER(w http.ResponseWriter, r *http.Request, pemType string, der []byte, derType string) error {
	switch r.URL.Query().Get("format") {
	case "", "pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, err := w.Write(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}))
		return err
	case "der":
		w.Header().Set("Content-Type", derType)
		_, err := w.Write(der)
		return err
	}
	return api.Errorf(http.StatusBadRequest, "format: want pem or der")
}

// handleCACertificate: GET /api/v1/ca/{name}[?format=pem|der]; during a
// rotation, PEM gives the current and the next CA, DER the current only.
func (s *API) handleCACertificate(w http.ResponseWriter, r *http.Request) error {
	certPEM, err := s.caCertificate(r.PathValue("name"))
	if err != nil {
		return err
	}
	if f := r.URL.Query().Get("format"); f == "" || f == "pem" { // the bundle, during a rotation
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, err := w.Write(certPEM)
		return err
	}
	block, _ := pem.Decode(certPEM) // DER holds one: the current CA
	if block == nil {
		return api.Errorf(http.StatusInternalServerError, "the CA's certificate does not decode")
	}
	return writePEMOrDER(w, r, "CERTIFICATE", block.Bytes, "application/pkix-cert")
}

// handleCACRL: GET /api/v1/ca/{name}/crl[?format=pem|der]; only the
// db-client CA publishes a CRL.
func (s *API) handleCACRL(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("name") != "db-client" {
		return api.Errorf(http.StatusNotFound, "only the db-client CA publishes a CRL")
	}
	der, err := s.ca.DBClientCRL()
	if err != nil {
		return err
	}
	return writePEMOrDER(w, r, "X509 CRL", der, "application/pkix-crl")
}

// handlePKIFile: GET /pki/{file}, without a login: db-client.crl (the CRL
// distribution point) and db-client.crt, both DER.
func (s *API) handlePKIFile(w http.ResponseWriter, r *http.Request) error {
	switch r.PathValue("file") {
	case "db-client.crl":
		der, err := s.ca.DBClientCRL()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Cache-Control", "max-age=300")
		_, err = w.Write(der)
		return err
	case "db-client.crt":
		w.Header().Set("Content-Type", "application/pkix-cert")
		_, err := w.Write(s.ca.DBClientCA().Raw)
		return err
	}
	return api.Errorf(http.StatusNotFound, "no such file: /pki/ serves db-client.crl and db-client.crt")
}

// handleADSetup: GET /api/v1/resources/mssql/{id}/ad-setup, the
// PowerShell script that makes Active Directory accept the db-client
// certificates of the resource's pkinit accounts.
func (s *API) handleADSetup(w http.ResponseWriter, r *http.Request) error {
	var res *store.Resource
	var accounts []*store.Account
	err := s.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.Resource(r.PathValue("id")); err != nil {
			return err
		}
		accounts, err = tx.Accounts(res.ID)
		return err
	})
	if res == nil {
		return api.Errorf(http.StatusNotFound, "no resource with id %q", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	if res.Type != tunnel.ProtocolMSSQL {
		return api.Errorf(http.StatusBadRequest, "resource %s is %s, not mssql", res.Name, res.Type)
	}
	var ad []ca.ADAccount
	for _, a := range accounts {
		if a.Auth == "pkinit" {
			ad = append(ad, ca.ADAccount{Name: a.Name, Username: a.Username, Realm: a.Realm, SID: a.SID})
		}
	}
	script, err := s.ca.ADSetupScript(res.Name, ad)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = io.WriteString(w, script)
	return err
}

// handleCARevoke: POST /api/v1/ca/{name}/revoke {"serial": …}: puts a
// db-client certificate on the CRL (the serial in decimal, as the audit
// log's dbclient.issue events name it, or in hex with colons or 0x).
func (s *API) handleCARevoke(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("name") != "db-client" {
		return api.Errorf(http.StatusNotFound, "only the db-client CA revokes certificates")
	}
	var req api.RevokeCertificateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	serial, ok := parseSerial(req.Serial)
	if !ok {
		return api.Errorf(http.StatusBadRequest, "serial %q: want the certificate's serial number, in decimal or hex (0x…, or aa:bb:…)", req.Serial)
	}
	if err := s.ca.RevokeDBClient(serial); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	if err := s.st.Update(func(tx *store.Tx) error {
		return audit.Append(tx, c.User.Name, "dbclient.revoke", "db-client CA", "success", c.Source, "serial "+serial.String())
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RevokeCertificateRequest{Serial: serial.String()})
	return nil
}

func parseSerial(s string) (*big.Int, bool) {
	s = strings.TrimSpace(s)
	base := 10
	switch {
	case strings.Contains(s, ":"):
		s, base = strings.ReplaceAll(s, ":", ""), 16
	case strings.HasPrefix(s, "0x"), strings.HasPrefix(s, "0X"):
		s, base = s[2:], 16
	}
	if s == "" || len(s) > 64 {
		return nil, false
	}
	n, ok := new(big.Int).SetString(s, base)
	return n, ok && n.Sign() > 0
}
