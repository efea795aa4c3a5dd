package mockas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/netguard"
)

// Server is one mock authorization server with one issuer. It is an
// [http.Handler]; serve it over TLS on the issuer's host.
type Server struct {
	issuer     string
	issuerURL  *url.URL
	prefix     string // the issuer's path: "" or "/tenant"
	cookieName string

	users      map[string]*User // by username
	usersBySub map[string]*User
	clients    map[string]*clientInfo
	scopes     map[string]bool // nil: any valid scope
	advertised []string        // scopes_supported
	cimd       bool
	hint       []User // accounts the login page lists: the defaults only

	accessTTL, refreshTTL, codeTTL time.Duration
	alg                            jose.SignatureAlgorithm

	now      func() time.Time
	log      *slog.Logger
	rec      *control.Recorder
	control  http.Handler
	cimdHTTP *http.Client

	// redirectMatch compares a registered redirect URI with the one a request
	// names. It is exact string comparison (RFC 9700 §4.1.3, OAuth 2.1
	// §2.3.1); a test replaces it with a relaxed one to prove that the
	// redirect checks catch the difference.
	redirectMatch func(registered, requested string) bool

	keyMu sync.RWMutex
	keys  []*signingKey // the last one signs

	mu sync.Mutex
	st state
}

// clientInfo is a client as the server knows it: pre-registered, or built
// from a Client ID Metadata Document.
type clientInfo struct {
	ID           string
	Name         string
	Secret       string // empty: public client
	RedirectURIs []string
	// CIMD is true for a client identified by its metadata document URL.
	CIMD bool
	// NoRefresh is true when the client's grant_types omit refresh_token.
	NoRefresh bool
}

// New validates cfg and returns a server with a fresh signing key.
func New(cfg Config) (*Server, error) {
	u, err := validateIssuer(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("mockas: %w", err)
	}
	s := &Server{
		issuer:        cfg.Issuer,
		issuerURL:     u,
		prefix:        u.Path,
		users:         map[string]*User{},
		usersBySub:    map[string]*User{},
		clients:       map[string]*clientInfo{},
		cimd:          !cfg.DisableCIMD,
		accessTTL:     orDefault(cfg.AccessTokenTTL, DefaultAccessTokenTTL),
		refreshTTL:    orDefault(cfg.RefreshTokenTTL, DefaultRefreshTokenTTL),
		codeTTL:       orDefault(cfg.CodeTTL, DefaultCodeTTL),
		now:           cfg.Now,
		log:           cfg.Logger,
		rec:           &control.Recorder{},
		redirectMatch: func(registered, requested string) bool { return registered == requested },
		st:            newState(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for name, d := range map[string]time.Duration{"access token TTL": cfg.AccessTokenTTL, "refresh token TTL": cfg.RefreshTokenTTL, "code TTL": cfg.CodeTTL} {
		if d < 0 {
			return nil, fmt.Errorf("mockas: %s %v is negative", name, d)
		}
	}
	sum := sha256.Sum256([]byte(cfg.Issuer))
	// One cookie per issuer, so two issuers on one host keep separate logins;
	// __Host- pins it to this host, Secure and Path=/ (RFC 6265bis §4.1.3.2).
	s.cookieName = "__Host-mockas_session_" + hex.EncodeToString(sum[:4])

	switch cfg.SigningAlgorithm {
	case "", "RS256":
		s.alg = jose.RS256
	case "ES256":
		s.alg = jose.ES256
	default:
		return nil, fmt.Errorf("mockas: signing algorithm %q is not supported (use RS256 or ES256)", cfg.SigningAlgorithm)
	}

	users := cfg.Users
	if users == nil {
		users = DefaultUsers
		s.hint = DefaultUsers
	}
	if len(users) == 0 {
		return nil, errors.New("mockas: no users: nobody could sign in (leave Users nil for the defaults)")
	}
	for i, usr := range users {
		if usr.Username == "" || usr.Password == "" {
			return nil, fmt.Errorf("mockas: user %d: username and password are required", i)
		}
		if usr.Subject == "" {
			usr.Subject = usr.Username
		}
		if usr.Name == "" {
			usr.Name = usr.Username
		}
		if s.users[usr.Username] != nil {
			return nil, fmt.Errorf("mockas: user %q: username repeated", usr.Username)
		}
		if s.usersBySub[usr.Subject] != nil {
			return nil, fmt.Errorf("mockas: user %q: subject %q repeated", usr.Username, usr.Subject)
		}
		s.users[usr.Username] = &usr
		s.usersBySub[usr.Subject] = &usr
	}

	for _, c := range cfg.Clients {
		switch {
		case c.ID == "":
			return nil, errors.New("mockas: a client has no id")
		case strings.HasPrefix(strings.ToLower(c.ID), "https://"):
			return nil, fmt.Errorf("mockas: client %q: a pre-registered client id must not be an https URL: such ids name Client ID Metadata Documents", c.ID)
		case s.clients[c.ID] != nil:
			return nil, fmt.Errorf("mockas: client %q: id repeated", c.ID)
		case len(c.RedirectURIs) == 0:
			return nil, fmt.Errorf("mockas: client %q: needs at least one redirect URI", c.ID)
		}
		for _, ru := range c.RedirectURIs {
			if err := checkRedirectURI(ru); err != nil {
				return nil, fmt.Errorf("mockas: client %q: %w", c.ID, err)
			}
		}
		name := c.Name
		if name == "" {
			name = c.ID
		}
		s.clients[c.ID] = &clientInfo{ID: c.ID, Name: name, Secret: c.Secret, RedirectURIs: slices.Clone(c.RedirectURIs)}
	}

	if cfg.ScopesSupported != nil {
		s.scopes = map[string]bool{}
	}
	for _, sc := range cfg.ScopesSupported {
		if !validScope(sc) {
			return nil, fmt.Errorf("mockas: scope %q is not a valid scope token (RFC 6749 §3.3)", sc)
		}
		s.scopes[sc] = true
	}
	for _, sc := range append(slices.Clone(cfg.ScopesSupported), oidcScopes...) {
		if !slices.Contains(s.advertised, sc) {
			s.advertised = append(s.advertised, sc)
		}
	}
	if s.scopes != nil {
		for _, sc := range oidcScopes {
			s.scopes[sc] = true
		}
	}

	guard := &netguard.Guard{Resolver: cfg.Resolver, AllowLoopback: cfg.AllowLoopback, Dial: cfg.Dial}
	guard.Trust(cfg.TrustedHosts...)
	s.cimdHTTP = &http.Client{
		Transport:     netguard.NewTransport(guard.DialContext, netguard.TransportOptions{RootCAs: cfg.RootCAs, MaxIdleConnsPerHost: 4}),
		CheckRedirect: netguard.NoRedirects,
		Timeout:       cimdFetchTimeout,
	}

	mux := http.NewServeMux()
	mux.Handle(control.PathPrefix+"events", control.EventsHandler(s.rec))
	s.control = control.Guard(cfg.ControlSecret, mux)

	if err := s.RotateKey(); err != nil {
		return nil, err
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// Recorder returns the recorder of everything the server received and did.
// Event kinds: metadata, authorize, login, consent, cimd_fetch, token,
// revoke, jwks, userinfo, logout.
func (s *Server) Recorder() *control.Recorder { return s.rec }

// endpoint returns the URL of an endpoint under the issuer, such as
// endpoint("/token").
func (s *Server) endpoint(p string) string { return s.issuer + p }

// ServeHTTP routes a request. The endpoints are listed in the package
// documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := r.URL.Path
	switch {
	case p == "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	case strings.HasPrefix(p, control.PathPrefix):
		s.control.ServeHTTP(w, r)
	case p == "/.well-known/oauth-authorization-server"+s.prefix:
		s.handleMetadata(w, r, "oauth-authorization-server")
	case p == "/.well-known/openid-configuration"+s.prefix, p == s.prefix+"/.well-known/openid-configuration":
		s.handleMetadata(w, r, "openid-configuration")
	case p == s.prefix+"/authorize":
		s.handleAuthorize(w, r)
	case p == s.prefix+"/login":
		s.handleLogin(w, r)
	case p == s.prefix+"/consent":
		s.handleConsent(w, r)
	case p == s.prefix+"/logout":
		s.handleLogout(w, r)
	case p == s.prefix+"/token":
		s.handleToken(w, r)
	case p == s.prefix+"/revoke":
		s.handleRevoke(w, r)
	case p == s.prefix+"/jwks":
		s.handleJWKS(w, r)
	case p == s.prefix+"/userinfo":
		s.handleUserinfo(w, r)
	default:
		http.NotFound(w, r)
	}
}

// secretParams are fingerprinted before they reach an event.
var secretParams = map[string]bool{
	"code": true, "code_verifier": true, "refresh_token": true, "client_secret": true,
	"token": true, "password": true, "csrf_token": true, "access_token": true,
}

// newEvent starts the event of one request.
func newEvent(r *http.Request, kind string) *control.Event {
	return &control.Event{Kind: kind, Method: r.Method, Host: r.Host, Path: r.URL.Path, Params: map[string]string{}, Detail: map[string]string{}}
}

// setParams copies the named parameters of v into e, fingerprinting
// secrets. A repeated parameter is recorded joined by commas.
func setParams(e *control.Event, v url.Values, names ...string) {
	for _, n := range names {
		vals, ok := v[n]
		if !ok {
			continue
		}
		if secretParams[n] {
			fps := make([]string, len(vals))
			for i, x := range vals {
				fps[i] = control.Fingerprint(x)
			}
			vals = fps
		}
		e.Params[n] = strings.Join(vals, ",")
	}
}

// record stores e with its status and logs it. Only fingerprints and
// non-secret values reach an event, so the log line is safe too.
func (s *Server) record(ctx context.Context, e *control.Event, status int) {
	e.Status = status
	e.Time = s.now()
	if len(e.Params) == 0 {
		e.Params = nil
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	s.rec.Record(*e)
	level := slog.LevelInfo
	if status >= 400 || e.Detail["error"] != "" {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("event", e.Kind), slog.String("method", e.Method), slog.String("path", e.Path), slog.Int("status", status)}
	for _, k := range []string{"client_id", "grant_type", "url"} {
		if v := e.Params[k]; v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	for _, k := range []string{"sub", "jti", "error", "error_description"} {
		if v := e.Detail[k]; v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	s.log.LogAttrs(ctx, level, "mockas_"+e.Kind, attrs...)
}

// hashSecret is the key under which a code or refresh token is stored, so
// the server's memory never holds them in clear.
func hashSecret(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}
