package cli

import (
	"fmt"
	"image"
	"io"
	"strings"

	"github.com/boombuler/barcode/qr"
	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) mfaCommand() *cli.Command {
	return &cli.Command{Name: "mfa", Usage: "multi-factor authentication", Subcommands: []*cli.Command{
		{Name: "enroll", Usage: "enroll a TOTP authenticator app (asks for your password, then the code to confirm)", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "password-stdin", Usage: "read your password as the first line of standard input (the code follows on the next)"},
		}, Before: noArgs, Action: a.mfaEnroll},
	}}
}

func (a *app) mfaEnroll(c *cli.Context) error {
	var (
		pw  string
		err error
	)
	if c.Bool("password-stdin") {
		pw, err = a.readLine()
	} else {
		pw, err = a.promptSecret("Password: ", "password-stdin")
	}
	if err != nil {
		return err
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	e, err := client.EnrollMFA(c.Context, api.MFAEnrollRequest{Password: pw})
	if err != nil {
		return err
	}
	w := a.stdout
	fmt.Fprintln(w, "Scan this code with an authenticator app, or enter the secret by hand.")
	if code, err := qr.Encode(e.URI, qr.M, qr.Auto); err == nil {
		printQR(w, code)
	}
	fmt.Fprintf(w, "secret: %s\nURI:    %s\n", e.Secret, e.URI)
	fmt.Fprint(a.stderr, "Code from the app: ")
	code, err := a.readLine()
	if err != nil {
		return err
	}
	if err := client.ConfirmMFA(c.Context, api.MFAConfirmRequest{Code: code}); err != nil {
		return err
	}
	fmt.Fprintln(w, "MFA enrolled: logins now ask for a code")
	return nil
}

// printQR draws a QR code with half blocks, two module rows a text line,
// light modules as ink so it reads on dark terminals, with a quiet zone.
func printQR(w io.Writer, code image.Image) {
	b := code.Bounds()
	const quiet = 2
	dark := func(x, y int) bool {
		if x < b.Min.X || y < b.Min.Y || x >= b.Max.X || y >= b.Max.Y {
			return false
		}
		r, _, _, _ := code.At(x, y).RGBA()
		return r < 0x8000
	}
	var sb strings.Builder
	for y := b.Min.Y - quiet; y < b.Max.Y+quiet; y += 2 {
		for x := b.Min.X - quiet; x < b.Max.X+quiet; x++ {
			top, bottom := !dark(x, y), !dark(x, y+1)
			switch {
			case top && bottom:
				sb.WriteString("█")
			case top:
				sb.WriteString("▀")
			case bottom:
				sb.WriteString("▄")
			default:
				sb.WriteString(" ")
			}
		}
		sb.WriteString("\n")
	}
	io.WriteString(w, sb.String())
}
