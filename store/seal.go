package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

var errOpen = errors.New("store: value does not open (corrupt, moved, or another key)")

// sealer is AES-256-GCM with a random nonce prefixed to each ciphertext.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("store: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: gcm: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain, ad []byte) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("store: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return s.aead.Seal(out, out[:ns], plain, ad)
}

func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, errOpen
	}
	plain, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

// placeAD binds a value to its bucket and key.
func placeAD(bucket string, key []byte) []byte {
	ad := make([]byte, 0, len(bucket)+1+len(key))
	ad = append(ad, bucket...)
	ad = append(ad, 0)
	return append(ad, key...)
}

// indexKey is the bbolt key under which a name is found: an HMAC, so the name
// itself is not in the file.
func indexKey(k []byte, kind, name string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(name))
	return m.Sum(nil)
}

func deriveKey(dataKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, dataKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
