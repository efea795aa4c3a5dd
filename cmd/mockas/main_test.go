package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestRunRefuses checks the flag errors that stop mockas before it
// listens.
func TestRunRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-issuer is required"},
		{[]string{"-issuer", "https://auth.provider.com"}, "plain http is allowed only on a loopback -listen address"},
		{[]string{"-issuer", "https://auth.provider.com", "-listen", "0.0.0.0:8443"}, "plain http is allowed only on a loopback"},
		{[]string{"-issuer", "https://auth.provider.com", "-tls-cert", "c.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-issuer", "https://auth.provider.com", "-client", "id=x"}, "at least one redirect="},
		{[]string{"-issuer", "https://auth.provider.com", "-user", "carol"}, "want name:password"},
		{[]string{"-issuer", "https://auth.provider.com", "-ca-file", "/nonexistent.pem"}, "-ca-file"},
		{[]string{"-issuer", "http://auth.provider.com", "-listen", "127.0.0.1:0"}, "plain http is only accepted on a loopback host"},
		{[]string{"-issuer", "https://auth.provider.com", "extra"}, "unexpected arguments"},
	} {
		var out bytes.Buffer
		err := run(tc.args, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q): %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-issuer", "-listen", "-tls-cert", "-tls-key", "-ca-file", "-trust-host", "-allow-loopback", "-client", "-user", "-disable-cimd", "-scopes", "-control-secret", "-access-token-ttl"} {
		if !strings.Contains(out.String(), "  "+f+" ") && !strings.Contains(out.String(), "  "+f+"\n") {
			t.Errorf("-h does not explain %s", f)
		}
	}
}
