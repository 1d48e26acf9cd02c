// Package ntlm is the server side of NTLMv2 authentication as [MS-NLMP]
// specifies it (learn.microsoft.com/openspecs/windows_protocols/ms-nlmp):
// building the CHALLENGE_MESSAGE (2.2.1.2) with its AV pairs (2.2.2.1),
// reading the NEGOTIATE_MESSAGE (2.2.1.1) and AUTHENTICATE_MESSAGE
// (2.2.1.3), and checking an NTLMv2 response (3.3.2): NTOWFv2 is
// HMAC-MD5 keyed by MD4(UTF-16LE(password)) over UTF-16LE(UPPER(user) +
// domain), and the response's first 16 bytes must be HMAC-MD5 keyed by
// NTOWFv2 over the server challenge and the rest of the response.
//
// It is what pamd's SQL Server stand-in uses to check Windows logins; the
// gateway's own NTLM client uses a maintained implementation. Message
// integrity codes and session keys are not derived: the stand-in does not
// sign or seal.
//
// Files: ntlm.go, fuzz_test.go.
package ntlm
