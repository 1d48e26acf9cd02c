package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) requestsCommand() *cli.Command {
	return &cli.Command{Name: "requests", Usage: "just-in-time access: ask for access a role grants on request, approve, deny, revoke", Subcommands: []*cli.Command{
		{Name: "create", ArgsUsage: "RESOURCE/ACCOUNT", Usage: "ask for access; prints the request's id", Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why you need it (approvers read it; sessions under the grant carry it)"},
			&cli.DurationFlag{Name: "duration", DefaultText: "1h, at most the role's --max-duration", Usage: "how long the grant lasts once approved"},
			outputFlag(),
		}, Action: a.requestsCreate},
		{Name: "list", Usage: "list requests: yours, those you approve (all for admins and auditors)", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "pending", Usage: "only those waiting for approvals"}, outputFlag(),
		}, Before: noArgs, Action: a.requestsList},
		{Name: "show", ArgsUsage: "ID", Usage: "show a request and its reviews", Flags: []cli.Flag{outputFlag()}, Action: a.requestsShow},
		{Name: "approve", ArgsUsage: "ID", Usage: "approve someone's request", Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason"}, outputFlag(),
		}, Action: a.requestsReview("approve")},
		{Name: "deny", ArgsUsage: "ID", Usage: "deny a pending request", Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why (required; the requester reads it)"}, outputFlag(),
		}, Action: a.requestsReview("deny")},
		{Name: "cancel", ArgsUsage: "ID", Usage: "withdraw your request, or give up its grant (its sessions end)", Flags: []cli.Flag{outputFlag()}, Action: a.requestsCancel},
		{Name: "revoke", ArgsUsage: "ID", Usage: "end an approved request's grant now, and its sessions (admins)", Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason"}, outputFlag(),
		}, Action: a.requestsRevoke},
	}}
}

func (a *app) requestsCreate(c *cli.Context) error {
	res, acct, err := splitTarget(c)
	if err != nil {
		return err
	}
	cl, err := client(c)
	if err != nil {
		return err
	}
	req := api.CreateAccessRequest{Resource: res, Account: acct, Reason: c.String("reason")}
	if c.IsSet("duration") {
		req.Duration = c.Duration("duration").String()
	}
	out, err := cl.CreateRequest(c.Context, req)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintln(a.stdout, out.ID)
	printEscaped(a.stderr, "request %s for %s/%s (%s) waits for %d approval(s) from %s until %s\n", out.ID, out.Resource, out.Account,
		out.Duration, out.ApprovalsNeeded, strings.Join(out.Approvers, " or "), ts(out.ExpiresAt))
	return nil
}

// requestState is a request's state for people: approvals so far while
// pending, the grant's end while approved.
func requestState(r api.AccessRequest) string {
	switch r.State {
	case "pending":
		return fmt.Sprintf("pending %d/%d", r.Approvals, r.ApprovalsNeeded)
	case "approved":
		return "approved until " + ts(r.GrantEnds)
	}
	return r.State
}

func (a *app) requestsList(c *cli.Context) error {
	cl, err := client(c)
	if err != nil {
		return err
	}
	out, err := cl.Requests(c.Context, c.Bool("pending"))
	if err != nil {
		return err
	}
	var rows [][]string
	for _, r := range out {
		rows = append(rows, []string{r.ID, r.User, r.Resource + "/" + r.Account, r.Duration, ts(r.CreatedAt), requestState(r), dash(r.Reason)})
	}
	return printList(c, out, []string{"ID", "USER", "TARGET", "DURATION", "CREATED", "STATE", "REASON"}, rows)
}

func (a *app) requestsShow(c *cli.Context) error {
	id, cl, err := argAndClient(c, "ID")
	if err != nil {
		return err
	}
	r, err := cl.Request(c.Context, id)
	if err != nil {
		return err
	}
	return a.printRequest(c, r)
}

func (a *app) printRequest(c *cli.Context, r api.AccessRequest) error {
	if jsonOutput(c) {
		return printJSON(a.stdout, r)
	}
	w := a.stdout
	printEscaped(w, "id:         %s\nuser:       %s\ntarget:     %s/%s\nreason:     %s\nduration:   %s\nrole:       %s\napprovers:  %s (%d of %d approvals)\nstate:      %s\ncreated:    %s\nexpires:    %s\n",
		r.ID, r.User, r.Resource, r.Account, dash(r.Reason), r.Duration, r.Role, strings.Join(r.Approvers, " or "), r.Approvals, r.ApprovalsNeeded,
		requestState(r), ts(r.CreatedAt), ts(r.ExpiresAt))
	if !r.ApprovedAt.IsZero() {
		printEscaped(w, "approved:   %s\ngrant ends: %s\nsessions:   %d\n", ts(r.ApprovedAt), ts(r.GrantEnds), r.Uses)
	}
	if !r.ClosedAt.IsZero() {
		printEscaped(w, "closed:     %s by %s: %s\n", ts(r.ClosedAt), r.ClosedBy, r.CloseReason)
	}
	if len(r.Reviews) > 0 {
		fmt.Fprintln(w, "reviews:")
	}
	for _, v := range r.Reviews {
		printEscaped(w, "  %s  %s  %s  %s\n", ts(v.At), v.User, v.Verdict, dash(v.Reason))
	}
	return nil
}

func (a *app) requestsReview(verdict string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if verdict == "deny" && !c.IsSet("reason") {
			return usageError("--reason is required (see %s --help)", c.Command.HelpName)
		}
		id, cl, err := argAndClient(c, "ID")
		if err != nil {
			return err
		}
		r, err := cl.ReviewRequest(c.Context, id, verdict, c.String("reason"))
		if err != nil {
			return err
		}
		if jsonOutput(c) {
			return printJSON(a.stdout, r)
		}
		switch {
		case verdict == "deny":
			fmt.Fprintf(a.stdout, "request %s denied\n", r.ID)
		case r.State == "approved":
			fmt.Fprintf(a.stdout, "request %s approved: %s may connect to %s/%s until %s\n", r.ID, r.User, r.Resource, r.Account, ts(r.GrantEnds))
		default:
			fmt.Fprintf(a.stdout, "request %s: your approval is %d of %d; it waits for more\n", r.ID, r.Approvals, r.ApprovalsNeeded)
		}
		return nil
	}
}

func (a *app) requestsCancel(c *cli.Context) error {
	id, cl, err := argAndClient(c, "ID")
	if err != nil {
		return err
	}
	out, err := cl.CancelRequest(c.Context, id)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "request %s cancelled; %d sessions ended\n", id, out.SessionsEnded)
	return nil
}

func (a *app) requestsRevoke(c *cli.Context) error {
	id, cl, err := argAndClient(c, "ID")
	if err != nil {
		return err
	}
	out, err := cl.RevokeRequest(c.Context, id, c.String("reason"))
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "request %s revoked; %d sessions ended\n", id, out.SessionsEnded)
	return nil
}
