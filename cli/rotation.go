package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

// passwordLengthFlag and passwordClassesFlag set a resource's policy for
// the passwords rotation draws. Their defaults are the server's, shown in
// help only: policyOptions sends what was given.
func passwordLengthFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "password-length", Usage: "rotated passwords' length (12 to 128)", DefaultText: "32"}
}

func passwordClassesFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "password-classes", Usage: "character classes rotated passwords use: lower,upper,digit,symbol", DefaultText: "all four"}
}

// policyOptions adds the password policy flags that were given to opts.
func policyOptions(c *cli.Context, opts map[string]string) map[string]string {
	if opts == nil {
		opts = map[string]string{}
	}
	if c.IsSet("password-length") {
		opts["password_length"] = fmt.Sprint(c.Int("password-length"))
	}
	if c.IsSet("password-classes") {
		opts["password_classes"] = c.String("password-classes")
	}
	return opts
}

// rotationSummary is the ROTATION column of accounts list.
func rotationSummary(r *api.Rotation) string {
	if r == nil {
		return "-"
	}
	var parts []string
	if r.Interval != "" {
		parts = append(parts, "every "+r.Interval)
	}
	switch {
	case r.Pending:
		parts = append(parts, "interrupted, resuming")
	case r.Result != "":
		parts = append(parts, r.Result+" "+ago(r.LastAttempt))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func ago(t time.Time) string {
	return time.Since(t).Round(time.Second).String() + " ago"
}

func printAccount(w io.Writer, a api.Account) {
	printEscaped(w, "account:   %s/%s\nusername:  %s\n", a.Resource, a.Name, dash(a.Username))
	if a.Auth != "" {
		fmt.Fprintf(w, "auth:      %s\n", a.Auth)
	}
	// The Windows login settings (SQL Server), those that are set.
	for _, f := range [...]struct{ name, v string }{{"domain", a.Domain}, {"realm", a.Realm}, {"SPN", a.SPN}, {"KDC", a.KDC},
		{"UPN", a.UPN}, {"SID", a.SID}, {"KDC name", a.KDCHostname}} {
		if f.v != "" {
			printEscaped(w, "%-10s %s\n", f.name+":", f.v)
		}
	}
	if a.HasKDCCA {
		fmt.Fprintln(w, "KDC CA:    set (--kdc-ca-file)")
	}
	if a.HasKeytab {
		fmt.Fprintln(w, "keytab:    stored (never shown)")
	}
	fmt.Fprintf(w, "MFA:       %s\ncreated:   %s\n", yesNo(a.RequireMFA), ts(a.CreatedAt))
	r := a.Rotation
	if r == nil {
		fmt.Fprintln(w, "rotation:  never rotated, no schedule (pamd accounts rotate, or accounts set --rotation-interval)")
		return
	}
	fmt.Fprintf(w, "rotation:  %s, as %s\n", orText(r.Interval, "on demand only", "every "), orText(r.RotateWith, "the account itself", ""))
	if !r.LastAttempt.IsZero() {
		fmt.Fprintf(w, "  last:    %s, %s\n", ts(r.LastAttempt), r.Result)
	}
	if r.Error != "" {
		printEscaped(w, "  error:   %s\n", r.Error) // the target's own words
	}
	if r.Warning != "" {
		printEscaped(w, "  warning: %s\n", r.Warning)
	}
	if !r.LastSuccess.IsZero() {
		fmt.Fprintf(w, "  rotated: %s\n", ts(r.LastSuccess))
	}
	if r.Pending {
		fmt.Fprintf(w, "  pending: an interrupted rotation since %s; pamd resumes it when the gateway answers\n", ts(r.PendingSince))
	}
	if !r.NextRun.IsZero() {
		fmt.Fprintf(w, "  next:    %s\n", ts(r.NextRun))
	}
}

func orText(s, empty, prefix string) string {
	if s == "" {
		return empty
	}
	return prefix + s
}

// reportRotation prints a rotation's outcome; a failed one is an error.
func (a *app) reportRotation(c *cli.Context, out api.RotateResult) error {
	r, name := out.Account.Rotation, out.Account.Resource+"/"+out.Account.Name
	if r == nil || r.Result != "success" {
		msg := "no outcome recorded"
		if r != nil {
			msg = r.Error
		}
		return cli.Exit(fmt.Sprintf("rotating %s failed: %s", name, msg), 1)
	}
	if jsonOutput(c) {
		return nil
	}
	fmt.Fprintf(a.stdout, "rotated %s: the new credential is set on the target, verified and stored; nobody has seen it\n", name)
	if r.Warning != "" {
		printEscaped(a.stderr, "warning: %s\n", r.Warning)
	}
	if out.LiveSessions > 0 {
		fmt.Fprintf(a.stdout, "%d live session(s) on the account keep their open connections; their new connections use the new credential\n", out.LiveSessions)
	}
	return nil
}
