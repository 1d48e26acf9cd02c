package tunnel

import "time"

// Access opens an access or control stream from pamd connect. Credential is
// the secret the server issued with the access session; it proves the stream
// belongs to that session.
type Access struct {
	SessionID  string `json:"session_id"`
	Credential string `json:"credential"`
}

// Hello is the first stream a gateway opens after connecting.
type Hello struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Descriptor tells a gateway everything it needs for one proxied connection.
// It travels only on the mutual-TLS leg and may hold credentials: never log it.
type Descriptor struct {
	SessionID    string    `json:"session_id"`
	ConnectionID string    `json:"connection_id,omitempty"`
	User         string    `json:"user"`
	Resource     string    `json:"resource"`
	Account      string    `json:"account,omitempty"`
	Protocol     string    `json:"protocol"`
	Target       string    `json:"target"` // host:port
	ExpiresAt    time.Time `json:"expires_at"`
	ClientAddr   string    `json:"client_addr,omitempty"`
	// Credentials for injection; empty for protocols that need none.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// String describes the descriptor without any credential, for logs.
func (d *Descriptor) String() string {
	return d.Protocol + " " + d.Resource + "/" + d.Account + " → " + d.Target + " (session " + d.SessionID + ")"
}
