package authserver

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// TestEnterpriseNeedsAValidIDToken: on an enterprise route a signed-in
// user without a kept, valid ID token is not admitted as fresh, so the
// proxy signs them in again (and keeps the new ID token) before any
// exchange; on another route the ID token plays no part.
func TestEnterpriseNeedsAValidIDToken(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	b := store.NewMemoryClock(clock)
	ids := &login.IDTokens{Records: store.Records[login.IDToken]{B: b, NS: login.NSIDTokens}, Now: clock}
	server := func(mcp string) *Server {
		cfg := configtest.Load(t, `
tls: {cert_file: c.pem, key_file: k.pem}
identity_provider: {issuer: https://idp.test, client_id: p, client_secret: s}
routes:
  - from: https://mcp.test
    to: https://remote.test
    mcp: {server: `+mcp+`}
`)
		log := slog.New(slog.DiscardHandler)
		return New(Options{Route: &cfg.Routes[0], Backend: b, Log: log, Now: clock, FormKey: make([]byte, 32), IDTokens: ids,
			Sessions: &login.Sessions{Records: store.Records[login.Session]{B: b, NS: login.NSSessions}, Now: clock}, Responder: &apierror.Responder{Log: log}})
	}
	ent, plain := server("{enterprise: {}, upstream_oauth2: {client_id: e, client_secret: s}}"), server("{}")
	sess := &login.Session{Identity: request.Identity{Subject: "alice"}}
	r := httptest.NewRequest("GET", "https://mcp.test/.mcp-proxy/authorize", nil)
	fresh := func(s *Server) bool {
		t.Helper()
		f, err := s.admit(r, sess)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if fresh(ent) {
		t.Errorf("alice has no kept ID token, yet the enterprise route admitted her without a new sign-in")
	}
	if !fresh(plain) {
		t.Errorf("a route without enterprise asked for a new sign-in")
	}
	if err := ids.Keep(context.Background(), "alice", &login.IDToken{Raw: "t", Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if !fresh(ent) {
		t.Errorf("with a valid ID token alice was sent to sign in again")
	}
	now = now.Add(time.Hour)
	if fresh(ent) {
		t.Errorf("with her ID token expired alice was admitted without a new sign-in")
	}
}
