// Package protocol groups pamd's pure codecs: wire formats that read from an
// io.Reader and write to an io.Writer and do no other I/O.
//
// Sub-packages:
//   - tunnel: the header every yamux stream starts with, and the session
//     descriptor the server hands a gateway.
//
// Nothing here imports another pamd package.
package protocol
