package rotation

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// newCredential makes the account's next credential: a password from the
// resource's policy, or an Ed25519 key pair (for SSH key accounts) as its
// kind says.
func newCredential(res *store.Resource, a *store.Account, how kind.Rotation, trigger string) (*store.PendingCredential, error) {
	p := &store.PendingCredential{Trigger: trigger, Since: time.Now().UTC()}
	if how == kind.RotateKey {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		comment := "pamd " + res.Name + "/" + a.Name + " " + p.Since.Format("2006-01-02")
		block, err := ssh.MarshalPrivateKey(priv, comment)
		if err != nil {
			return nil, err
		}
		sshPub, err := ssh.NewPublicKey(pub)
		if err != nil {
			return nil, err
		}
		p.PrivateKey = string(pem.EncodeToMemory(block))
		p.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + strings.ReplaceAll(comment, " ", "_")
		return p, nil
	}
	policy, err := passwordPolicyOf(res.Options)
	if err != nil {
		return nil, err
	}
	if p.Password, err = policy.generate(); err != nil {
		return nil, err
	}
	return p, nil
}

// passwordPolicy shapes generated passwords so targets accept them. The
// symbols avoid characters that need quoting in shells, connection strings
// and chpasswd's user:password lines.
type passwordPolicy struct {
	length  int
	classes []string
}

var passwordClasses = map[string]string{
	"lower":  "abcdefghijkmnopqrstuvwxyz",
	"upper":  "ABCDEFGHJKLMNPQRSTUVWXYZ",
	"digit":  "23456789",
	"symbol": "-_.~!@#%^*+=",
}

const (
	defaultPasswordLength = 32
	minPasswordLength     = 12
	maxPasswordLength     = 128
)

// passwordPolicyOf reads a resource's password_length and password_classes
// options (defaults: 32, all four classes).
func passwordPolicyOf(o map[string]string) (passwordPolicy, error) {
	p := passwordPolicy{length: defaultPasswordLength, classes: []string{"lower", "upper", "digit", "symbol"}}
	if v := o["password_length"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minPasswordLength || n > maxPasswordLength {
			return p, api.Errorf(http.StatusBadRequest, "--password-length: want %d to %d", minPasswordLength, maxPasswordLength)
		}
		p.length = n
	}
	if v := o["password_classes"]; v != "" {
		p.classes = nil
		seen := map[string]bool{}
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			if _, ok := passwordClasses[c]; !ok {
				return p, api.Errorf(http.StatusBadRequest, "--password-classes: %q is not one of lower, upper, digit, symbol", c)
			}
			if !seen[c] {
				seen[c] = true
				p.classes = append(p.classes, c)
			}
		}
	}
	return p, nil
}

// generate returns a password of the policy's length with at least one
// character of each class, drawn from crypto/rand.
func (p passwordPolicy) generate() (string, error) {
	all := ""
	out := make([]byte, 0, p.length)
	for _, c := range p.classes {
		set := passwordClasses[c]
		all += set
		ch, err := pick(set)
		if err != nil {
			return "", err
		}
		out = append(out, ch)
	}
	for len(out) < p.length {
		ch, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, ch)
	}
	// Shuffle so the guaranteed characters are not always first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}

func pick(set string) (byte, error) {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	if err != nil {
		return 0, err
	}
	return set[i.Int64()], nil
}

// TakePolicy moves the password policy options out of an options map, so
// the type's own option checks never see them.
func TakePolicy(opts map[string]string) map[string]string {
	policy := map[string]string{}
	for _, k := range []string{"password_length", "password_classes"} {
		if v, ok := opts[k]; ok {
			policy[k] = v
			delete(opts, k)
		}
	}
	return policy
}

// SetPolicy checks policy options and sets them on the resource.
func SetPolicy(k kind.Kind, res *store.Resource, policy map[string]string, changed *[]string) error {
	if len(policy) == 0 {
		return nil
	}
	if !k.Schema().Rotates {
		return api.Errorf(http.StatusBadRequest, "%s resources have no credentials to rotate: --password-length and --password-classes do not apply", res.Type)
	}
	merged := map[string]string{}
	for k, v := range res.Options {
		merged[k] = v
	}
	for k, v := range policy {
		merged[k] = v
	}
	if _, err := passwordPolicyOf(merged); err != nil {
		return err
	}
	if res.Options == nil {
		res.Options = map[string]string{}
	}
	for k, v := range policy {
		if res.Options[k] != v {
			res.Options[k] = v
			*changed = append(*changed, k+" "+v)
		}
	}
	return nil
}
