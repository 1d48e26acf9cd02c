package pkinit

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Name types of RFC 4120 §6.2.
const (
	NameTypePrincipal = 1 // KRB_NT_PRINCIPAL: a user
	NameTypeSrvInst   = 2 // KRB_NT_SRV_INST: krbtgt and other services
)

const generalString = casn1.Tag(27)

// Principal is a Kerberos principal name in a realm.
type Principal struct {
	NameType   int32
	Components []string
	Realm      string
}

// String is the principal as name/instance@REALM.
func (p Principal) String() string { return strings.Join(p.Components, "/") + "@" + p.Realm }

// Equal compares the components and the realm; the name type is a hint.
func (p Principal) Equal(o Principal) bool {
	if p.Realm != o.Realm || len(p.Components) != len(o.Components) {
		return false
	}
	for i := range p.Components {
		if p.Components[i] != o.Components[i] {
			return false
		}
	}
	return true
}

// TGS is the ticket-granting service of a realm, krbtgt/REALM@REALM: the
// name a KDC certificate's id-pkinit-san carries.
func TGS(realm string) Principal {
	return Principal{NameType: NameTypeSrvInst, Components: []string{"krbtgt", realm}, Realm: realm}
}

// PrincipalOtherName is the GeneralName (otherName, type id-pkinit-san,
// value KRB5PrincipalName, RFC 4556 §3.2.2) naming p, to put in a
// certificate's subjectAltName.
func PrincipalOtherName(p Principal) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidPKINITSAN)
		b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(generalString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(p.Realm)) })
				})
				b.AddASN1(casn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddASN1Int64(int64(p.NameType))
						})
						b.AddASN1(casn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
								for _, c := range p.Components {
									b.AddASN1(generalString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(c)) })
								}
							})
						})
					})
				})
			})
		})
	})
	return b.Bytes()
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// CertificatePrincipals returns the principals a certificate's
// id-pkinit-san otherNames name. A SAN that does not parse names none.
func CertificatePrincipals(c *x509.Certificate) []Principal {
	var out []Principal
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			out = append(out, sanPrincipals(ext.Value)...)
		}
	}
	return out
}

// sanPrincipals reads the id-pkinit-san otherNames of a subjectAltName
// extension's value.
func sanPrincipals(der []byte) []Principal {
	in := cryptobyte.String(der)
	var names cryptobyte.String
	if !in.ReadASN1(&names, casn1.SEQUENCE) {
		return nil
	}
	var out []Principal
	for !names.Empty() {
		var gn cryptobyte.String
		var tag casn1.Tag
		if !names.ReadAnyASN1(&gn, &tag) {
			return out
		}
		if tag != casn1.Tag(0).ContextSpecific().Constructed() {
			continue
		}
		var oid asn1.ObjectIdentifier
		var value cryptobyte.String
		if !gn.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidPKINITSAN) ||
			!gn.ReadASN1(&value, casn1.Tag(0).ContextSpecific().Constructed()) {
			continue
		}
		if p, ok := parseKRB5PrincipalName(value); ok {
			out = append(out, p)
		}
	}
	return out
}

const maxComponents = 8

func parseKRB5PrincipalName(s cryptobyte.String) (Principal, bool) {
	var p Principal
	var seq, realmTag, realm, nameTag, name, typeTag, stringsTag, comps cryptobyte.String
	var nt int64
	if !s.ReadASN1(&seq, casn1.SEQUENCE) ||
		!seq.ReadASN1(&realmTag, casn1.Tag(0).ContextSpecific().Constructed()) ||
		!realmTag.ReadASN1(&realm, generalString) ||
		!seq.ReadASN1(&nameTag, casn1.Tag(1).ContextSpecific().Constructed()) ||
		!nameTag.ReadASN1(&name, casn1.SEQUENCE) ||
		!name.ReadASN1(&typeTag, casn1.Tag(0).ContextSpecific().Constructed()) ||
		!typeTag.ReadASN1Int64WithTag(&nt, casn1.INTEGER) ||
		!name.ReadASN1(&stringsTag, casn1.Tag(1).ContextSpecific().Constructed()) ||
		!stringsTag.ReadASN1(&comps, casn1.SEQUENCE) {
		return p, false
	}
	if nt < -1<<31 || nt >= 1<<31 {
		return p, false
	}
	p.Realm, p.NameType = string(realm), int32(nt)
	for !comps.Empty() {
		var c cryptobyte.String
		if len(p.Components) == maxComponents || !comps.ReadASN1(&c, generalString) {
			return p, false
		}
		p.Components = append(p.Components, string(c))
	}
	return p, len(p.Components) > 0
}
