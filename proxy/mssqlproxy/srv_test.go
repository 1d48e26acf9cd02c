package mssqlproxy

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/pamd/pamd/protocol/tds/tdstest"
)

// dnsServer answers, over UDP on a loopback port, SRV queries for
// _kerberos._tcp.REALM with kdc.example.test at port, and A queries for
// that name with 127.0.0.1; anything else is NXDOMAIN. It counts queries.
func dnsServer(t *testing.T, realm string, port uint16) (string, func() int) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var queries atomic.Int32
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			queries.Add(1)
			q := m.Questions[0]
			m.Header.Response, m.Header.Authoritative = true, true
			target := dnsmessage.MustNewName("kdc.example.test.")
			name := strings.ToLower(q.Name.String())
			switch {
			case q.Type == dnsmessage.TypeSRV && name == "_kerberos._tcp."+strings.ToLower(realm)+".":
				m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 60},
					Body: &dnsmessage.SRVResource{Priority: 0, Weight: 0, Port: port, Target: target}}}
			case q.Type == dnsmessage.TypeA && name == "kdc.example.test.":
				m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 60},
					Body: &dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}}}
			case q.Type == dnsmessage.TypeAAAA && name == "kdc.example.test.":
			default:
				m.Header.RCode = dnsmessage.RCodeNameError
			}
			if out, err := m.Pack(); err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String(), func() int { return int(queries.Load()) }
}

// TestPKINITFindsTheKDCThroughDNS: an account without --kdc reaches its
// realm's KDC through the _kerberos._tcp SRV record, from a DNS server
// the test runs; a realm without records says to set --kdc.
func TestPKINITFindsTheKDCThroughDNS(t *testing.T) {
	sig := newSigner(t)
	kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: sig.pem})
	kdc.AddCertUser(t, "alice")
	_, p, _ := net.SplitHostPort(kdc.Addr)
	var port uint16
	for _, c := range p {
		port = port*10 + uint16(c-'0')
	}
	dnsAddr, queries := dnsServer(t, tdstest.Realm, port)
	old := windows.resolver
	windows.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dnsAddr)
	}}
	t.Cleanup(func() { windows.resolver = old })

	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Keytab = kdc.AddService(t, pkinitSPN)
	d := pkinitDescriptor(t, s.Addr, kdc, kdc.KDCCA)
	d.MSSQL.KDC = "" // found through DNS
	if n, err := queryThrough(servePKINIT(t, d, sig.certify("alice"))); err != nil || n != 7 {
		t.Fatalf("through the SRV record: %d %v\nKDC log:\n%s", n, err, kdc.Log())
	}
	if queries() < 2 {
		t.Fatalf("%d DNS queries: the SRV record and the KDC's address were not asked for", queries())
	}

	other := pkinitDescriptor(t, s.Addr, kdc, kdc.KDCCA)
	other.MSSQL.KDC, other.MSSQL.Realm, other.Account = "", "NOWHERE.TEST", "alice-nowhere"
	if _, err := queryThrough(servePKINIT(t, other, sig.certify("alice"))); err == nil ||
		!strings.Contains(err.Error(), "DNS has no _kerberos._tcp.NOWHERE.TEST SRV records; set --kdc") {
		t.Fatalf("a realm without SRV records: %v", err)
	}
}
