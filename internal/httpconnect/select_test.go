package httpconnect

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, want string // want: Redacted, or the error's start
	}{
		{"http://proxy.corp:3128", "http://proxy.corp:3128"},
		{"http://gw:hunter2@proxy.corp:3128/", "http://proxy.corp:3128"},
		{"proxy.corp:3128", "http://proxy.corp:3128"},
		{"10.1.2.3:8080", "http://10.1.2.3:8080"},
		{"http://proxy.corp", "http://proxy.corp:80"},
		{"http://[fd00::1]:3128", "http://[fd00::1]:3128"},
		{"https://gw:hunter2@proxy.corp:3128", "proxy https://proxy.corp:3128: only http:// proxies"},
		{"socks5://proxy.corp:1080", "proxy socks5://proxy.corp:1080: only http:// proxies"},
		{"http://gw:hunter2@proxy.corp:3128/path", "proxy http://proxy.corp:3128: want http://"},
		{"http://gw:hunter2@proxy.corp:3128?x=1", "proxy http://proxy.corp:3128: want http://"},
		{"http://gw:hun ter2@proxy corp:3128", "not a proxy URL"},
		{"http://", "not a proxy URL"},
		{"", "not a proxy URL"},
	}
	for _, tt := range tests {
		u, err := Parse(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = Redacted(u)
		}
		if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "hunter2") || strings.Contains(got, "hun ter2") {
			t.Errorf("Parse(%q): %q, want %q (and never the password)", tt.in, got, tt.want)
		}
	}
}

// TestForServer: the given proxy wins; else https_proxy or HTTPS_PROXY,
// but not for what NO_PROXY names, nor for loopback, nor from HTTP_PROXY
// (the server is https).
func TestForServer(t *testing.T) {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(v, "")
	}
	check := func(given, addr, want string) {
		t.Helper()
		u, err := ForServer(given, addr)
		got := "direct"
		switch {
		case err != nil:
			got = err.Error()
		case u != nil:
			got = Redacted(u)
			if p, _ := u.User.Password(); p != "hunter2" {
				t.Errorf("ForServer(to %s): the proxy's password is lost", addr)
			}
		}
		if !strings.HasPrefix(got, want) || strings.Contains(got, "hunter2") {
			t.Errorf("ForServer(given %v, to %s): %q, want %q", given != "", addr, got, want)
		}
	}
	check("", "pam.example.com:8443", "direct")
	t.Setenv("HTTP_PROXY", "http://gw:hunter2@plain.corp:3128")
	check("", "pam.example.com:8443", "direct")

	t.Setenv("HTTPS_PROXY", "http://gw:hunter2@proxy.corp:3128")
	check("", "pam.example.com:8443", "http://proxy.corp:3128")
	check("", "127.0.0.1:8443", "direct")
	check("", "localhost:8443", "direct")
	check("http://gw:hunter2@given.corp:8080", "127.0.0.1:8443", "http://given.corp:8080")

	t.Setenv("NO_PROXY", ".example.com,10.0.0.0/8")
	check("", "pam.example.com:8443", "direct")
	check("", "10.1.2.3:8443", "direct")
	check("", "pam.example.org:8443", "http://proxy.corp:3128")
	check("http://gw:hunter2@given.corp:8080", "pam.example.com:8443", "http://given.corp:8080")

	t.Setenv("https_proxy", "http://gw:hunter2@lower.corp:3128") // as curl: the lower case wins
	check("", "pam.example.org:8443", "http://lower.corp:3128")
	t.Setenv("https_proxy", "http://gw:hun ter2@bad host:3128")
	check("", "pam.example.org:8443", "HTTPS_PROXY: not a proxy URL")
	t.Setenv("https_proxy", "socks5://gw:hunter2@socks.corp:1080")
	check("", "pam.example.org:8443", "HTTPS_PROXY: proxy socks5://socks.corp:1080: only http:// proxies")
}
