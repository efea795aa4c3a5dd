package proxy

import (
	"context"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// What the tests of this package read and write behind the proxy's back,
// through the same records the proxy uses.

func (rt *route) host() string                { return rt.cfg.Key() }
func (rt *route) binding() config.BindingMode { return rt.cfg.Server().Binding() }

func (rt *route) bindingKey(subject, session, upstream string) string {
	return binding.Key(rt.binding(), rt.host(), subject, session, upstream)
}

func (rt *route) userKeyPrefix(subject string) string {
	return binding.UserPrefix(rt.binding(), rt.host(), subject)
}

func (p *Proxy) putSession(sid string, s *login.Session) error {
	return store.Records[login.Session]{B: p.backend, NS: login.NSSessions}.Put(context.Background(), store.SecretKey(sid), s, time.Time{})
}

func (p *Proxy) putCode(code string, c *authserver.Code) error {
	return store.Records[authserver.Code]{B: p.backend, NS: authserver.NSCodes}.Put(context.Background(), store.SecretKey(code), c, c.Expires)
}

func (p *Proxy) accessToken(tok string) (*bearer.AccessToken, error) {
	return p.access.Records.Get(context.Background(), store.SecretKey(tok))
}

func (p *Proxy) putAccessToken(tok string, at *bearer.AccessToken) error {
	return p.access.Records.Put(context.Background(), store.SecretKey(tok), at, at.Expires)
}

func (p *Proxy) upstreamToken(host, key string) (*upstream.Token, error) {
	return p.current().routes[host].tokens.Get(context.Background(), key)
}

// tokenResponse is what the tests read of a token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// tokenError is what the tests read of a token endpoint's refusal.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	RequestID   string `json:"request_id"`
}

// authserverSession is a session of alice that outlives every test clock.
var authserverSession = login.Session{Identity: request.Identity{Subject: "alice"}, Expires: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}

func (p *Proxy) putRefreshToken(tok string, rt *authserver.RefreshToken) error {
	return store.Records[authserver.RefreshToken]{B: p.backend, NS: authserver.NSRefresh}.Put(context.Background(), store.SecretKey(tok), rt, rt.Expires)
}

func (p *Proxy) putConsent(route, subject, clientID string, at time.Time) error {
	return store.Records[authserver.Consent]{B: p.backend, NS: authserver.NSConsents}.Put(context.Background(),
		route+"\x00"+subject+"\x00"+clientID, &authserver.Consent{Time: at}, time.Time{})
}
