package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/mockas"
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
	// Every declared flag appears in -h with its explanation.
	fs, _ := newFlagSet(&bytes.Buffer{})
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if f.Usage == "" {
			t.Errorf("flag -%s has no explanation", f.Name)
		}
		name, _ := flag.UnquoteUsage(f)
		if !strings.Contains(out.String(), "  -"+f.Name+" "+name) && !strings.Contains(out.String(), "  -"+f.Name+"\n") {
			t.Errorf("-h does not list -%s", f.Name)
		}
		first := strings.Fields(strings.ReplaceAll(f.Usage, "`", ""))[0]
		if !strings.Contains(out.String(), first) {
			t.Errorf("-h does not explain -%s", f.Name)
		}
	})
	if n < 18 {
		t.Errorf("only %d flags declared; -enable-dcr or another went missing", n)
	}
	for _, want := range []string{"-enable-dcr", "/.test/", "client_credentials"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
}

// TestConfigFromFlags checks that each switch reaches the server's
// configuration.
// The ID-JAG flags' values, as the container stack writes them.
var (
	idjagPriv, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idjagKey, _  = mockas.IDJAGKeyFlag(idjagPriv)
	idjagPub, _  = mockas.ClientKeyFlag(&idjagPriv.PublicKey)
)

func TestConfigFromFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(mockas.Config) bool
	}{
		{nil, func(c mockas.Config) bool {
			return !c.EnableDCR && !c.DisableCIMD && c.ScopesSupported == nil && c.Users == nil
		}},
		{[]string{"-enable-dcr"}, func(c mockas.Config) bool { return c.EnableDCR }},
		{[]string{"-disable-cimd"}, func(c mockas.Config) bool { return c.DisableCIMD }},
		{[]string{"-scopes", "a, b"}, func(c mockas.Config) bool { return strings.Join(c.ScopesSupported, " ") == "a b" }},
		{[]string{"-code-ttl", "5s", "-access-token-ttl", "2m", "-refresh-token-ttl", "1h"}, func(c mockas.Config) bool {
			return c.CodeTTL == 5*time.Second && c.AccessTokenTTL == 2*time.Minute && c.RefreshTokenTTL == time.Hour
		}},
		{[]string{"-client", "id=svc,secret=s,redirect=https://a.example/cb"}, func(c mockas.Config) bool {
			return len(c.Clients) == 1 && c.Clients[0].ID == "svc" && c.Clients[0].Secret == "s"
		}},
		{[]string{"-user", "carol:pw"}, func(c mockas.Config) bool { return len(c.Users) == 1 && c.Users[0].Subject == "carol" }},
		{[]string{"-control-secret", "s3"}, func(c mockas.Config) bool { return c.ControlSecret == "s3" }},
		{[]string{"-id-jag-key", idjagKey, "-id-jag-access", "https://auth.provider.com=mcp-proxy-confidential,alice", "-id-jag-issuer", "https://idp.example.com=" + idjagPub},
			func(c mockas.Config) bool {
				return c.IDJAG != nil && c.IDJAG.Key.Equal(idjagPriv) && len(c.IDJAG.Access) == 1 && c.IDJAG.Access[0].ClientID == "mcp-proxy-confidential" &&
					strings.Join(c.IDJAG.Access[0].Users, ",") == "alice" && len(c.IDJAGIssuers) == 1 && c.IDJAGIssuers[0].Issuer == "https://idp.example.com"
			}},
	} {
		fs, o := newFlagSet(&bytes.Buffer{})
		if err := fs.Parse(append([]string{"-issuer", "https://auth.provider.com"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := config(o, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if !tc.check(cfg) {
			t.Errorf("%q: config %+v", tc.args, cfg)
		}
		if _, err := mockas.New(cfg); err != nil {
			t.Errorf("%q: mockas.New: %v", tc.args, err)
		}
	}
}
