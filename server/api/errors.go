package api

import (
	"fmt"
	"net/http"
)

// Errorf is an Error with an HTTP status and a message fit for the caller.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// ValidName keeps the names of users, roles, resources, accounts and
// gateways simple enough for globs, URLs and shells. kind names the thing
// in the error.
func ValidName(kind, name string) error {
	if name == "" || len(name) > 64 {
		return Errorf(http.StatusBadRequest, "%s name must be 1 to 64 characters", kind)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return Errorf(http.StatusBadRequest, "%s name %q: use letters, digits, '-', '_' and '.'", kind, name)
		}
	}
	return nil
}
