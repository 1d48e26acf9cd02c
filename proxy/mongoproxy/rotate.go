package mongoproxy

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/pamd/pamd/protocol/tunnel"
)

// Login proves the descriptor's credential authenticates.
func Login(ctx context.Context, d *tunnel.Descriptor) error {
	top, err := connect(ctx, d, true)
	if err != nil {
		return err
	}
	return top.Disconnect(context.Background())
}

// ChangePassword sets the account's new password with updateUser on its
// auth database, logged in as the account itself or as the rotation account.
func ChangePassword(ctx context.Context, r *tunnel.Rotation) error {
	who := &r.Account
	if r.With != nil {
		who = r.With
	}
	db := orDefault(r.Account.Mongo.AuthDatabase, "admin")
	reply, err := command(ctx, who, bsoncore.NewDocumentBuilder().
		AppendString("updateUser", r.Account.Mongo.Username).
		AppendString("pwd", r.NewPassword).
		AppendString("$db", db).Build())
	if err != nil {
		return err
	}
	if ok, errmsg, code, _ := outcome(reply); !ok {
		return fmt.Errorf("updateUser %s on %s as %s refused: %s (code %d)", r.Account.Mongo.Username, db, who.Mongo.Username, errmsg, code)
	}
	return nil
}
