package pkinit

import "fmt"

// KDCError is a KRB-ERROR the KDC answered the AS-REQ with.
type KDCError struct {
	Code  int32
	Text  string // e-text, as the KDC wrote it (may be empty)
	Realm string
}

func (e *KDCError) Error() string {
	s := fmt.Sprintf("pkinit: the KDC of %s refused the request: %s (%d)", e.Realm, ErrorName(e.Code), e.Code)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Error codes of RFC 4120 that a PKINIT exchange meets, and PKINIT's own
// (RFC 4556 §3.1.3; 79 to 81 from MS-PKCA and later RFCs).
const (
	CodeCPrincipalUnknown               = 6
	CodePolicy                          = 12
	CodeETypeNoSupp                     = 14
	CodeClientRevoked                   = 18
	CodeKeyExpired                      = 23
	CodePreauthFailed                   = 24
	CodePreauthRequired                 = 25
	CodeClockSkew                       = 37
	CodeClientNotTrusted                = 62
	CodeKDCNotTrusted                   = 63
	CodeInvalidSig                      = 64
	CodeDHKeyParametersNotAccepted      = 65
	CodeCertificateMismatch             = 66
	CodeCantVerifyCertificate           = 70
	CodeInvalidCertificate              = 71
	CodeRevokedCertificate              = 72
	CodeRevocationStatusUnknown         = 73
	CodeRevocationStatusUnavailable     = 74
	CodeClientNameMismatch              = 75
	CodeKDCNameMismatch                 = 76
	CodeInconsistentKeyPurpose          = 77
	CodeDigestInCertNotAccepted         = 78
	CodePAChecksumMustBeIncluded        = 79
	CodeDigestInSignedDataNotAccepted   = 80
	CodePublicKeyEncryptionNotSupported = 81
)

var errorNames = map[int32]string{
	CodeCPrincipalUnknown:               "KDC_ERR_C_PRINCIPAL_UNKNOWN",
	CodePolicy:                          "KDC_ERR_POLICY",
	CodeETypeNoSupp:                     "KDC_ERR_ETYPE_NOSUPP",
	CodeClientRevoked:                   "KDC_ERR_CLIENT_REVOKED",
	CodeKeyExpired:                      "KDC_ERR_KEY_EXPIRED",
	CodePreauthFailed:                   "KDC_ERR_PREAUTH_FAILED",
	CodePreauthRequired:                 "KDC_ERR_PREAUTH_REQUIRED",
	CodeClockSkew:                       "KRB_AP_ERR_SKEW",
	CodeClientNotTrusted:                "KDC_ERR_CLIENT_NOT_TRUSTED",
	CodeKDCNotTrusted:                   "KDC_ERR_KDC_NOT_TRUSTED",
	CodeInvalidSig:                      "KDC_ERR_INVALID_SIG",
	CodeDHKeyParametersNotAccepted:      "KDC_ERR_DH_KEY_PARAMETERS_NOT_ACCEPTED",
	CodeCertificateMismatch:             "KDC_ERR_CERTIFICATE_MISMATCH",
	67:                                  "KRB_AP_ERR_NO_TGT",
	68:                                  "KDC_ERR_WRONG_REALM",
	69:                                  "KRB_AP_ERR_USER_TO_USER_REQUIRED",
	CodeCantVerifyCertificate:           "KDC_ERR_CANT_VERIFY_CERTIFICATE",
	CodeInvalidCertificate:              "KDC_ERR_INVALID_CERTIFICATE",
	CodeRevokedCertificate:              "KDC_ERR_REVOKED_CERTIFICATE",
	CodeRevocationStatusUnknown:         "KDC_ERR_REVOCATION_STATUS_UNKNOWN",
	CodeRevocationStatusUnavailable:     "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE",
	CodeClientNameMismatch:              "KDC_ERR_CLIENT_NAME_MISMATCH",
	CodeKDCNameMismatch:                 "KDC_ERR_KDC_NAME_MISMATCH",
	CodeInconsistentKeyPurpose:          "KDC_ERR_INCONSISTENT_KEY_PURPOSE",
	CodeDigestInCertNotAccepted:         "KDC_ERR_DIGEST_IN_CERT_NOT_ACCEPTED",
	CodePAChecksumMustBeIncluded:        "KDC_ERR_PA_CHECKSUM_MUST_BE_INCLUDED",
	CodeDigestInSignedDataNotAccepted:   "KDC_ERR_DIGEST_IN_SIGNED_DATA_NOT_ACCEPTED",
	CodePublicKeyEncryptionNotSupported: "KDC_ERR_PUBLIC_KEY_ENCRYPTION_NOT_SUPPORTED",
}

// ErrorName is the spec's name of a Kerberos error code.
func ErrorName(code int32) string {
	if n, ok := errorNames[code]; ok {
		return n
	}
	return fmt.Sprintf("error %d", code)
}
