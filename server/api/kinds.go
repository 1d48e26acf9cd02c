package api

import "github.com/pamd/pamd/protocol/tunnel"

// Kind describes a resource type for the console (GET /api/v1/kinds): the
// console builds its resource and account forms from it.
type Kind struct {
	Name  string `json:"name"`  // the resource type, e.g. ssh
	Label string `json:"label"` // e.g. SSH server
	// ResourceFields are a resource's settings beyond its name and gateway:
	// its address (host, port) and options.
	ResourceFields []Field `json:"resource_fields"`
	// AccountFields are an account's settings beyond its name,
	// description and MFA (empty: the type has no credentials).
	AccountFields []Field `json:"account_fields"`
	// Rotates says accounts of the type can have their credential rotated.
	Rotates bool `json:"rotates"`
	// AccessCommand is how a person opens a session from a laptop
	// ("pamd connect"), and AccessNote what else to know.
	AccessCommand string `json:"access_command"`
	AccessNote    string `json:"access_note,omitempty"`
	// PinsHostKey: the type pins its targets' host keys (trust-host-key);
	// UserCA: each resource has a user CA its targets trust.
	PinsHostKey bool `json:"pins_host_key,omitempty"`
	UserCA      bool `json:"user_ca,omitempty"`
	// EditNote is said on the resource's edit form.
	EditNote string `json:"edit_note,omitempty"`
}

// Field types.
const (
	FieldText     = "text"
	FieldNumber   = "number"
	FieldBool     = "bool"
	FieldSelect   = "select"
	FieldTextarea = "textarea"
	FieldSecret   = "secret"
)

// Field is one input of a kind's form.
type Field struct {
	// Name is the request's field (host, port, username, auth, ...) or,
	// with Option, the key in the resource's options.
	Name        string   `json:"name"`
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Option      bool     `json:"option,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Default     string   `json:"default,omitempty"`
	Placeholder string   `json:"placeholder,omitempty"`
	Help        string   `json:"help,omitempty"`
	Choices     []string `json:"choices,omitempty"` // select
	// Flag is the command line's flag for the field (pamd resources add
	// and set) when it is not Name with - for _; a textarea's flag names
	// a file that holds the value.
	Flag string `json:"flag,omitempty"`
	// Edit: the field is on the edit form too; Keep: there, empty keeps
	// what is stored (secrets and long values are never shown).
	Edit bool `json:"edit,omitempty"`
	Keep bool `json:"keep,omitempty"`
	// ShowIf shows the field only while another field has one of the values.
	ShowIf *Condition `json:"show_if,omitempty"`
}

// Condition names a field and the values it must have.
type Condition struct {
	Field  string   `json:"field"`
	Values []string `json:"values"`
}

// Detail is one label and value the console shows of a resource.
type Detail struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// ResourceCheck is one check of a resource test.
type ResourceCheck struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Record is a session record with the server's one-line summary of it,
// rendered by the resource's kind ("" for terminal data, which is replayed).
type Record struct {
	tunnel.Record
	Summary string `json:"summary,omitempty"`
}
