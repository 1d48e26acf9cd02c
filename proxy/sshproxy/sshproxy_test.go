package sshproxy

import (
	"context"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// rsaHostSigner is an RSA host key that signs only with algos.
func rsaHostSigner(t *testing.T, algos ...string) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(rsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ssh.NewSignerWithAlgorithms(s.(ssh.AlgorithmSigner), algos)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// A target with an RSA host key is only accepted with a SHA-2 signature:
// one that offers only SHA-1 "ssh-rsa" is refused, at login and at the
// probe that pins the key.
func TestRSAHostKeyNeverSHA1(t *testing.T) {
	for _, tc := range []struct {
		algo string
		ok   bool
	}{
		{ssh.KeyAlgoRSA, false},
		{ssh.KeyAlgoRSASHA256, true},
		{ssh.KeyAlgoRSASHA512, true},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			tt := startTarget(t, targetOpts{hostKey: rsaHostSigner(t, tc.algo)})
			c, err := dialTarget(context.Background(), tt.descriptor(t))
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("login with host key algorithm %s: %v", tc.algo, err)
			}
			key, err := ProbeHostKey(context.Background(), tt.addr)
			if (err == nil) != tc.ok || (tc.ok && !strings.HasPrefix(key, "ssh-rsa ")) {
				t.Fatalf("probe with host key algorithm %s: %q %v", tc.algo, key, err)
			}
		})
	}
}

// An account's RSA key signs with SHA-2 only; a target that accepts only
// SHA-1 signatures refuses it.
func TestRSAAccountKeyNeverSignsSHA1(t *testing.T) {
	block, err := ssh.MarshalPrivateKey(rsaKey(t), "")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(rsaKey(t))
	for _, tc := range []struct {
		algo string
		ok   bool
	}{
		{ssh.KeyAlgoRSA, false},
		{ssh.KeyAlgoRSASHA256, true},
		{ssh.KeyAlgoRSASHA512, true},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			tt := startTarget(t, targetOpts{pubKey: signer.PublicKey(), pubKeyAlgos: []string{tc.algo}})
			d := tt.descriptor(t)
			d.SSH.Auth, d.SSH.Password, d.SSH.PrivateKey = "key", "", string(pem.EncodeToMemory(block))
			c, err := dialTarget(context.Background(), d)
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("key login where the target takes only %s: %v", tc.algo, err)
			}
		})
	}
}

func TestKeyboardInteractiveAnswersOnlyPasswordPrompts(t *testing.T) {
	answer := passwordAnswers("s3cret")
	for _, tc := range []struct {
		questions []string
		echos     []bool
		ok        bool
	}{
		{[]string{"Password: "}, []bool{false}, true},
		{[]string{"pamdtest@host's PASSWORD:"}, []bool{false}, true},
		{nil, nil, true}, // an informational round
		{[]string{"Verification code: "}, []bool{false}, false},
		{[]string{"Password: "}, []bool{true}, false}, // echoed: not a password prompt
		{[]string{"Password: ", "OTP: "}, []bool{false, false}, false},
		{[]string{"New password: "}, []bool{false}, false},
		{[]string{"Password: "}, nil, false},
	} {
		got, err := answer("", "", tc.questions, tc.echos)
		if (err == nil) != tc.ok {
			t.Errorf("%q echo %v: answers %q, err %v", tc.questions, tc.echos, got, err)
			continue
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
		if tc.ok && len(got) != len(tc.questions) {
			t.Errorf("%q: %d answers", tc.questions, len(got))
		}
		for _, a := range got {
			if a != "s3cret" {
				t.Errorf("%q: answer %q", tc.questions, a)
			}
		}
	}

	// Against a target: a password prompt logs in; any other prompt does
	// not get the password.
	for _, tc := range []struct {
		prompt string
		echo   bool
		ok     bool
	}{
		{"Password: ", false, true},
		{"Enter your one-time code: ", false, false},
		{"Password (it will be shown): ", true, false},
	} {
		tt := startTarget(t, targetOpts{kbd: []string{tc.prompt}, echo: tc.echo})
		c, err := dialTarget(context.Background(), tt.descriptor(t))
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("keyboard-interactive %q echo %v: %v", tc.prompt, tc.echo, err)
		}
	}
}
