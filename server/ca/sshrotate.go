package ca

import (
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// Rotating a resource's SSH user CA (the "ssh-ca" resource key): start
// makes a next key, and the CA line targets trust (TrustedUserCAKeys)
// holds both until complete, when the next key signs and the old one is
// dropped (its line can go from the targets), or rollback, when the next
// one is dropped. The current key signs all through the overlap.

// SSHRotation is one resource's SSH user CA rotation in progress.
type SSHRotation struct {
	ResourceID  string
	Fingerprint string // the current key's (SHA256:…, as ssh-keygen -l)
	Next        string
	StartedAt   time.Time
}

const sshCAUse = "ssh-ca"

// StartSSHRotation makes a next user CA key for the resource.
func (a *Authority) StartSSHRotation(resourceID string, record Record) error {
	if _, _, err := a.ResourceKey(sshCAUse, resourceID); err != nil { // the current one exists first
		return err
	}
	return a.st.Update(func(tx *store.Tx) error {
		st, err := readRotations(tx)
		if err != nil {
			return err
		}
		if _, ok := st.SSHNext[resourceID]; ok {
			return fmt.Errorf("%w: the resource's SSH user CA is being rotated already: complete it (pamd ca rotate complete --type ssh --resource NAME) or roll it back", ErrRotation)
		}
		p, _, err := kind.NewEd25519PEM()
		if err != nil {
			return err
		}
		st.SSHNext[resourceID], st.SSHStarted[resourceID] = p, time.Now().UTC()
		if err := writeRotations(tx, st); err != nil {
			return err
		}
		return record.write(tx, "next "+sshFingerprint([]byte(p)))
	})
}

// CompleteSSHRotation makes the resource's next user CA key the one that
// signs.
func (a *Authority) CompleteSSHRotation(resourceID string, record Record) error {
	return a.endSSHRotation(resourceID, true, record)
}

// RollbackSSHRotation drops the resource's next user CA key.
func (a *Authority) RollbackSSHRotation(resourceID string, record Record) error {
	return a.endSSHRotation(resourceID, false, record)
}

func (a *Authority) endSSHRotation(resourceID string, complete bool, record Record) error {
	return a.st.Update(func(tx *store.Tx) error {
		st, err := readRotations(tx)
		if err != nil {
			return err
		}
		next, ok := st.SSHNext[resourceID]
		if !ok {
			return fmt.Errorf("%w: the resource's SSH user CA is not being rotated: start with pamd ca rotate start --type ssh --resource NAME", ErrRotation)
		}
		detail := "dropped " + sshFingerprint([]byte(next))
		if complete {
			cur, err := tx.Secret(sshCAUse + "/" + resourceID)
			if err != nil {
				return err
			}
			if err := tx.PutSecret(sshCAUse+"/"+resourceID, []byte(next)); err != nil {
				return err
			}
			detail = "now " + sshFingerprint([]byte(next)) + ", was " + sshFingerprint(cur)
		}
		delete(st.SSHNext, resourceID)
		delete(st.SSHStarted, resourceID)
		if err := writeRotations(tx, st); err != nil {
			return err
		}
		return record.write(tx, detail)
	})
}

// NextResourceKey is the next key of a per-resource key's rotation in
// progress (only the SSH user CA rotates), or nil.
func (a *Authority) NextResourceKey(use, resourceID string) (ssh.Signer, error) {
	if use != sshCAUse {
		return nil, nil
	}
	var p string
	err := a.st.View(func(tx *store.Tx) error {
		st, err := readRotations(tx)
		if err == nil {
			p = st.SSHNext[resourceID]
		}
		return err
	})
	if err != nil || p == "" {
		return nil, err
	}
	return ssh.ParsePrivateKey([]byte(p))
}

// ForgetSSHRotation drops, in the caller's transaction, the next SSH user
// CA key of a resource being removed. Every rotation step drops those of
// resources already gone too.
func (a *Authority) ForgetSSHRotation(tx *store.Tx, resourceID string) error {
	st, err := readRotations(tx)
	if err != nil {
		return err
	}
	if _, ok := st.SSHNext[resourceID]; !ok {
		return nil
	}
	delete(st.SSHNext, resourceID)
	delete(st.SSHStarted, resourceID)
	return writeRotations(tx, st)
}

// SSHRotations are the SSH user CA rotations in progress.
func (a *Authority) SSHRotations() ([]SSHRotation, error) {
	var out []SSHRotation
	err := a.st.View(func(tx *store.Tx) error {
		st, err := readRotations(tx)
		if err != nil {
			return err
		}
		for id, p := range st.SSHNext {
			curPEM, err := tx.Secret(sshCAUse + "/" + id)
			if err != nil {
				continue // the resource's keys are gone with it
			}
			cur, err1 := ssh.ParsePrivateKey(curPEM)
			next, err2 := ssh.ParsePrivateKey([]byte(p))
			if err1 != nil || err2 != nil {
				return fmt.Errorf("SSH user CA rotation of resource %s: the keys do not parse", id)
			}
			out = append(out, SSHRotation{ResourceID: id, Fingerprint: ssh.FingerprintSHA256(cur.PublicKey()),
				Next: ssh.FingerprintSHA256(next.PublicKey()), StartedAt: st.SSHStarted[id]})
		}
		return nil
	})
	return out, err
}

// sshFingerprint is a private key's public fingerprint (SHA256:…).
func sshFingerprint(keyPEM []byte) string {
	k, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return "(unreadable)"
	}
	return ssh.FingerprintSHA256(k.PublicKey())
}
