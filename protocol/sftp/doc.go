// Package sftp reads the SSH File Transfer Protocol's packets, as far as
// recording file operations needs: the framing, and the fields of the
// requests and replies that name files and move data. It implements
// draft-ietf-secsh-filexfer-02 (SFTP version 3, what OpenSSH speaks),
// sections 3 (packet format), 6 (requests) and 7 (responses).
//
// A packet is a uint32 length, a type byte, and for every type but INIT and
// VERSION a uint32 request id; strings are a uint32 length and bytes.
//
// Files: sftp.go (ReadPacket, Packet, field decoding), fuzz_test.go.
package sftp
