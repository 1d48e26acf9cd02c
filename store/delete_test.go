package store

import (
	"errors"
	"testing"
)

// A deleted user's or gateway's name is free again, and nothing of it is
// found by name or id.
func TestDeleteUserAndGatewayFreeTheirNames(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		u := &User{ID: NewID(), Name: "erin"}
		g := &Gateway{ID: NewID(), Name: "gw1"}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		if err := tx.CreateGateway(g); err != nil {
			return err
		}
		if err := tx.DeleteUser(u); err != nil {
			return err
		}
		if err := tx.DeleteGateway(g); err != nil {
			return err
		}
		if _, err := tx.UserByName("erin"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted user found by name: %v", err)
		}
		if _, err := tx.User(u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted user found by id: %v", err)
		}
		if _, err := tx.GatewayByName("gw1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted gateway found by name: %v", err)
		}
		if err := tx.CreateUser(&User{ID: NewID(), Name: "erin"}); err != nil {
			t.Errorf("name of a deleted user not free: %v", err)
		}
		return tx.CreateGateway(&Gateway{ID: NewID(), Name: "gw1"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Enrollment tokens are listed and deleted by hash.
func TestEnrollTokensListAndDelete(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		for _, h := range []string{"a", "b"} {
			if err := tx.PutEnrollToken(&EnrollToken{Hash: h, GatewayName: "gw-" + h}); err != nil {
				return err
			}
		}
		if err := tx.DeleteEnrollToken("a"); err != nil {
			return err
		}
		all, err := tx.EnrollTokens()
		if err != nil {
			return err
		}
		if len(all) != 1 || all[0].Hash != "b" {
			t.Errorf("tokens after deleting one: %+v", all)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
