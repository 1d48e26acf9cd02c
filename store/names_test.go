package store

import (
	"errors"
	"strings"
	"testing"
)

// A name that is missing or taken is said in words a user can be shown as
// they are: the API passes them on, so no "store:" reaches a person.
func TestNameErrorsAreForPeople(t *testing.T) {
	s, _ := openTemp(t)
	err := s.Update(func(tx *Tx) error {
		r := &Resource{ID: NewID(), Name: "db"}
		if err := tx.CreateResource(r); err != nil {
			return err
		}
		_, missing := tx.ResourceByName("nope")
		_, noAccount := tx.AccountByName(r.ID, "ops")
		taken := tx.CreateResource(&Resource{ID: NewID(), Name: "db"})
		for _, c := range []struct {
			err      error
			sentinel error
			want     string
		}{
			{missing, ErrNotFound, `resource "nope" not found`},
			{noAccount, ErrNotFound, `account "ops" not found`},
			{taken, ErrExists, `resource "db" already exists`},
		} {
			if !errors.Is(c.err, c.sentinel) || c.err.Error() != c.want || strings.Contains(c.err.Error(), "store") {
				t.Errorf("got %v, want %q (and Is %v)", c.err, c.want, c.sentinel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
