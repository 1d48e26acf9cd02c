package ca

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/store"
)

// A CA's rotation: Start makes a next CA beside the current one, and both
// are trusted (the overlap); Complete makes the next one current, keeping
// the one it replaces as the type's previous CA (its certificate alone,
// never its key); Rollback drops the next one (a completed rotation is
// not rolled back: rotate again). The state is the store's secret rotationSecret, so a restart in the
// overlap keeps it.
//
// During the overlap the current CA keeps signing, except the gateway CA:
// renewals come from the next one, so connected gateways (told to renew
// now) hold a new certificate before Complete. The previous gateway CA is
// kept so that a gateway still holding one of its certificates is told to
// enrol again; the others' previous CAs are only the record.

// rotationSecret holds the rotations in progress and what completed ones
// retired (rotationState, JSON).
const rotationSecret = "ca-rotation"

type storedPair struct {
	Cert string `json:"cert"`          // PEM
	Key  string `json:"key,omitempty"` // PEM; never kept for a retired (previous) CA
}

type rotationState struct {
	Next    map[string]storedPair `json:"next,omitempty"` // by type
	Started map[string]time.Time  `json:"started,omitempty"`
	Prev    map[string]storedPair `json:"prev,omitempty"` // certificates alone
	// NextIssued are the serials of the gateway certificates the next
	// gateway CA issued.
	NextIssued []string `json:"next_issued,omitempty"`
	// SSHNext are the next SSH user CA keys (PEM) of the resources whose
	// user CA is rotated, by resource ID (sshrotate.go).
	SSHNext    map[string]string    `json:"ssh_next,omitempty"`
	SSHStarted map[string]time.Time `json:"ssh_started,omitempty"`

	// keyDropped: a previous CA's key was read (state written before keys
	// were dropped) and left out; Load writes the state again without it.
	keyDropped bool
}

// Rotation is one CA's rotation state, for pamd ca rotate status.
type Rotation struct {
	Type        string
	Fingerprint string    // the current CA's
	Next        string    // the next CA's fingerprint; empty: no rotation in progress
	StartedAt   time.Time // when the rotation began
	Previous    string    // the CA the last completed rotation retired
}

// Record writes a rotation step's audit event in the step's transaction;
// detail names the fingerprints involved (never a key). nil records
// nothing.
type Record func(tx *store.Tx, detail string) error

func (r Record) write(tx *store.Tx, detail string) error {
	if r == nil {
		return nil
	}
	return r(tx, detail)
}

func pemFingerprint(certPEM string) string {
	c, err := pki.DecodeCert([]byte(certPEM))
	if err != nil {
		return "(unreadable)"
	}
	return pki.Fingerprint(c.Raw)
}

// ErrRotation is a rotation step that does not fit the state: the message
// says what to do instead.
var ErrRotation = errors.New("pamd: CA rotation")

// Rotatable are the types of CA that rotate.
var Rotatable = []string{TypeServer, TypeGateway, TypeResource, TypeDBClient}

func specOf(typ string) (name, commonName string, err error) {
	for _, s := range caSpecs {
		if s.typ == typ {
			return s.name, s.commonName, nil
		}
	}
	return "", "", fmt.Errorf("%w: no CA of type %q: want server, gateway, resource or db-client", ErrRotation, typ)
}

func readRotations(tx *store.Tx) (*rotationState, error) {
	st := &rotationState{Next: map[string]storedPair{}, Started: map[string]time.Time{}, Prev: map[string]storedPair{},
		SSHNext: map[string]string{}, SSHStarted: map[string]time.Time{}}
	b, err := tx.Secret(rotationSecret)
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("CA rotation state: %w", err)
	}
	for _, m := range []*map[string]storedPair{&st.Next, &st.Prev} {
		if *m == nil {
			*m = map[string]storedPair{}
		}
	}
	if st.Started == nil {
		st.Started = map[string]time.Time{}
	}
	if st.SSHNext == nil {
		st.SSHNext = map[string]string{}
	}
	if st.SSHStarted == nil {
		st.SSHStarted = map[string]time.Time{}
	}
	for typ, p := range st.Prev { // a retired CA's key is dropped (state written before it was not kept)
		if p.Key != "" {
			st.Prev[typ] = storedPair{Cert: p.Cert}
			st.keyDropped = true
		}
	}
	return st, nil
}

func writeRotations(tx *store.Tx, st *rotationState) error {
	for id := range st.SSHNext { // a removed resource's next key goes with it
		if _, err := tx.Resource(id); errors.Is(err, store.ErrNotFound) {
			delete(st.SSHNext, id)
			delete(st.SSHStarted, id)
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.PutSecret(rotationSecret, b)
}

// loadRotations reads the rotation state into memory (Load, in its
// update: a retired CA's key still in the store is removed).
func (a *Authority) loadRotations(tx *store.Tx) error {
	st, err := readRotations(tx)
	if err != nil {
		return err
	}
	if st.keyDropped {
		if err := writeRotations(tx, st); err != nil {
			return err
		}
	}
	next, prev := map[string]keyPair{}, map[string]keyPair{}
	for typ, sp := range st.Next {
		kp, err := parseKeyPair([]byte(sp.Cert), []byte(sp.Key))
		if err != nil {
			return fmt.Errorf("CA rotation state (%s): %w", typ, err)
		}
		next[typ] = kp
	}
	for typ, sp := range st.Prev {
		kp, err := parseCertOnly([]byte(sp.Cert))
		if err != nil {
			return fmt.Errorf("CA rotation state (%s): %w", typ, err)
		}
		prev[typ] = kp
	}
	issued := map[string]bool{}
	for _, s := range st.NextIssued {
		issued[s] = true
	}
	a.mu.Lock()
	a.next, a.prev, a.nextIssued = next, prev, issued
	a.mu.Unlock()
	return nil
}

// parseCertOnly is a retired CA: its certificate, no key.
func parseCertOnly(certPEM []byte) (keyPair, error) {
	cert, err := pki.DecodeCert(certPEM)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{cert: cert, certPEM: certPEM}, nil
}

// memory is what a step changes in memory, built in its transaction from
// what it wrote and swapped in (swap) once the transaction committed.
type memory struct {
	typ     string
	current *keyPair // nil: unchanged
	next    map[string]keyPair
	prev    map[string]keyPair
	// clearIssued empties nextIssued (the steps of the gateway CA).
	clearIssued bool
}

// stage copies the in-memory rotation state for a step of typ to change.
// The steps are serialised (stepMu), so nothing else changes it meanwhile.
func (a *Authority) stage(typ string) *memory {
	a.mu.RLock()
	defer a.mu.RUnlock()
	m := &memory{typ: typ, next: map[string]keyPair{}, prev: map[string]keyPair{}, clearIssued: typ == TypeGateway}
	for k, v := range a.next {
		m.next[k] = v
	}
	for k, v := range a.prev {
		m.prev[k] = v
	}
	return m
}

// swap makes a committed step's state the one in memory, in one locked
// assignment.
func (a *Authority) swap(m *memory) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.current != nil {
		a.current[m.typ] = *m.current
	}
	a.next, a.prev = m.next, m.prev
	if m.clearIssued {
		a.nextIssued = map[string]bool{}
	}
}

// StartRotation makes a next CA for typ, trusted beside the current one
// until CompleteRotation or RollbackRotation.
func (a *Authority) StartRotation(typ string, record Record) error {
	_, commonName, err := specOf(typ)
	if err != nil {
		return err
	}
	return a.step(typ, func(tx *store.Tx, st *rotationState, m *memory) error {
		if _, ok := st.Next[typ]; ok {
			return fmt.Errorf("%w: the %s CA is being rotated already: complete it (pamd ca rotate complete --type %s) or roll it back (pamd ca rotate rollback --type %s)", ErrRotation, typ, typ, typ)
		}
		kp, keyPEM, err := newKeyPair(commonName)
		if err != nil {
			return err
		}
		st.Next[typ] = storedPair{Cert: string(kp.certPEM), Key: string(keyPEM)}
		st.Started[typ] = time.Now().UTC()
		if typ == TypeGateway {
			st.NextIssued = nil
		}
		if err := writeRotations(tx, st); err != nil {
			return err
		}
		m.next[typ] = kp
		return record.write(tx, "next "+pki.Fingerprint(kp.cert.Raw))
	})
}

// step runs one rotation step of typ, one at a time: do reads and changes
// the stored state in one transaction and stages the memory it leads to,
// which the Authority takes in one assignment only once the transaction
// has committed.
func (a *Authority) step(typ string, do func(tx *store.Tx, st *rotationState, m *memory) error) error {
	a.stepMu.Lock()
	defer a.stepMu.Unlock()
	m := a.stage(typ)
	err := a.st.Update(func(tx *store.Tx) error {
		st, err := readRotations(tx)
		if err != nil {
			return err
		}
		return do(tx, st, m)
	})
	if err != nil {
		return err
	}
	a.swap(m)
	return nil
}

// endRotation forgets typ's next CA in the stored state.
func (st *rotationState) endRotation(typ string) {
	delete(st.Next, typ)
	delete(st.Started, typ)
	if typ == TypeGateway {
		st.NextIssued = nil
	}
}

// CompleteRotation makes typ's next CA the current one; the one it
// replaces is kept as the previous CA (its certificate alone: its key is
// dropped).
func (a *Authority) CompleteRotation(typ string, record Record) error {
	name, _, err := specOf(typ)
	if err != nil {
		return err
	}
	return a.step(typ, func(tx *store.Tx, st *rotationState, m *memory) error {
		next, ok := st.Next[typ]
		if !ok {
			return notRotating(typ)
		}
		nextKP, err := parseKeyPair([]byte(next.Cert), []byte(next.Key))
		if err != nil {
			return fmt.Errorf("CA rotation state (%s): %w", typ, err)
		}
		curCert, err := tx.Secret(name + ".cert")
		if err != nil {
			return err
		}
		prevKP, err := parseCertOnly(curCert)
		if err != nil {
			return err
		}
		st.Prev[typ] = storedPair{Cert: string(curCert)}
		if err := putKeyPair(tx, name, []byte(next.Cert), []byte(next.Key)); err != nil {
			return err
		}
		st.endRotation(typ)
		if err := writeRotations(tx, st); err != nil {
			return err
		}
		m.current = &nextKP
		delete(m.next, typ)
		m.prev[typ] = prevKP
		return record.write(tx, "now "+pemFingerprint(next.Cert)+", was "+pemFingerprint(string(curCert)))
	})
}

// RollbackRotation drops typ's next CA: what it signed is no longer
// trusted.
func (a *Authority) RollbackRotation(typ string, record Record) error {
	if _, _, err := specOf(typ); err != nil {
		return err
	}
	return a.step(typ, func(tx *store.Tx, st *rotationState, m *memory) error {
		next, ok := st.Next[typ]
		if !ok && st.Prev[typ].Cert != "" {
			return fmt.Errorf("%w: the %s CA is not being rotated, and a completed rotation cannot be rolled back: rotate again (pamd ca rotate start --type %s)", ErrRotation, typ, typ)
		}
		if !ok {
			return notRotating(typ)
		}
		st.endRotation(typ)
		if err := writeRotations(tx, st); err != nil {
			return err
		}
		delete(m.next, typ)
		return record.write(tx, "dropped "+pemFingerprint(next.Cert))
	})
}

func notRotating(typ string) error {
	return fmt.Errorf("%w: the %s CA is not being rotated: start with pamd ca rotate start --type %s", ErrRotation, typ, typ)
}

// noteNextIssued records, in the caller's transaction, a gateway
// certificate the next gateway CA (issuer) issued; the Authority learns it
// once that transaction has committed, if issuer is still its next CA
// then (bbolt runs commit handlers after it lets the next writer in, and
// a rotation step may have come between).
func (a *Authority) noteNextIssued(tx *store.Tx, serial string, issuer keyPair) error {
	st, err := readRotations(tx)
	if err != nil {
		return err
	}
	if !slices.Contains(st.NextIssued, serial) {
		st.NextIssued = append(st.NextIssued, serial)
	}
	if err := writeRotations(tx, st); err != nil {
		return err
	}
	tx.OnCommit(func() {
		a.mu.Lock()
		if next, ok := a.next[TypeGateway]; ok && next.cert.Equal(issuer.cert) {
			a.nextIssued[serial] = true
		}
		a.mu.Unlock()
	})
	return nil
}

// FromNextGatewayCA reports whether the gateway certificate with that
// serial came from the next gateway CA of the rotation in progress.
func (a *Authority) FromNextGatewayCA(serial string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	_, rotating := a.next[TypeGateway]
	return rotating && a.nextIssued[serial]
}

// Rotations is every CA's rotation state, in Rotatable's order.
func (a *Authority) Rotations() ([]Rotation, error) {
	var started map[string]time.Time
	if err := a.st.View(func(tx *store.Tx) error {
		st, err := readRotations(tx)
		if err == nil {
			started = st.Started
		}
		return err
	}); err != nil {
		return nil, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []Rotation
	for _, typ := range Rotatable {
		r := Rotation{Type: typ, Fingerprint: pki.Fingerprint(a.current[typ].cert.Raw), StartedAt: started[typ]}
		if n, ok := a.next[typ]; ok {
			r.Next = pki.Fingerprint(n.cert.Raw)
		}
		if p, ok := a.prev[typ]; ok {
			r.Previous = pki.Fingerprint(p.cert.Raw)
		}
		out = append(out, r)
	}
	return out, nil
}

// Bundle is a CA's certificate (PEM) and, while it is rotated, the next
// one's after it: what the machines that trust it are to trust during the
// overlap.
func (a *Authority) Bundle(typ string) []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := append([]byte{}, a.current[typ].certPEM...)
	if n, ok := a.next[typ]; ok {
		out = append(out, n.certPEM...)
	}
	return out
}

// nextCertPEM is the next CA's certificate of a rotation of typ in
// progress, or nil.
func (a *Authority) nextCertPEM(typ string) []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if n, ok := a.next[typ]; ok {
		return n.certPEM
	}
	return nil
}
