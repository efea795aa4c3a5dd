package mockas

import (
	"bufio"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/dpopcheck"
	"github.com/mcp-proxy/mcp-proxy/internal/faults"
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
	// workloadIssuers are the trusted issuers of JWT bearer grants.
	workloadIssuers map[string]crypto.PublicKey
	// idjagIssuers are the trusted enterprise identity providers (ID-JAGs).
	idjagIssuers map[string]crypto.PublicKey
	// idjag, when set, makes this server an enterprise identity provider.
	idjag      *IDJAGIssuing
	scopes     map[string]bool // nil: any valid scope
	advertised []string        // scopes_supported
	hint       []User          // accounts the login page lists: the defaults only
	alg        jose.SignatureAlgorithm

	now      func() time.Time
	log      *slog.Logger
	rec      *control.Recorder
	control  http.Handler
	faults   *faults.Injector
	handler  http.Handler // route behind the fault injector
	cimdHTTP *http.Client

	// setMu guards set, what the control API changes at run time. It may be
	// taken while mu is held, never the other way round.
	setMu sync.RWMutex
	set   Settings

	// redirectMatch compares a registered redirect URI with the one a request
	// names. It is exact string comparison (RFC 9700 §4.1.3, OAuth 2.1
	// §2.3.1); a test replaces it with a relaxed one to prove that the
	// redirect checks catch the difference.
	redirectMatch func(registered, requested string) bool

	keyMu sync.RWMutex
	keys  []*signingKey // the last one signs

	// dpop verifies token requests' DPoP proofs, remembering their jtis.
	dpop      *dpopcheck.Verifier
	dpopNonce dpopcheck.Nonce // required in proofs while Settings.DPoPNonce is on

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
	// GrantTypes are the grants a dynamically registered client registered;
	// nil means every grant its kind (public or confidential) allows.
	GrantTypes []string
	// AuthMethod is the token_endpoint_auth_method a dynamically registered
	// client registered and must use; empty means any its kind allows.
	AuthMethod string
	// PublicKey verifies the client assertions of a private_key_jwt client
	// (then Secret is empty).
	PublicKey crypto.PublicKey
}

// confidential reports whether the client authenticates: with a secret or
// with a key.
func (c *clientInfo) confidential() bool { return c.Secret != "" || c.PublicKey != nil }

// allows reports whether the client may use the grant type gt.
func (c *clientInfo) allows(gt string) bool {
	return c.GrantTypes == nil || slices.Contains(c.GrantTypes, gt)
}

// lookupClient finds a pre-registered or dynamically registered client.
func (s *Server) lookupClient(id string) *clientInfo {
	if c := s.clients[id]; c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.registered[id]
}

// New validates cfg and returns a server with a fresh signing key.
func New(cfg Config) (*Server, error) {
	u, err := validateIssuer(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("mockas: %w", err)
	}
	s := &Server{
		issuer:     cfg.Issuer,
		issuerURL:  u,
		prefix:     u.Path,
		users:      map[string]*User{},
		usersBySub: map[string]*User{},
		clients:    map[string]*clientInfo{},
		set: Settings{
			AccessTokenTTL:  orDefault(cfg.AccessTokenTTL, DefaultAccessTokenTTL),
			RefreshTokenTTL: orDefault(cfg.RefreshTokenTTL, DefaultRefreshTokenTTL),
			CodeTTL:         orDefault(cfg.CodeTTL, DefaultCodeTTL),
			CIMD:            !cfg.DisableCIMD,
			DCR:             cfg.EnableDCR,
		},
		now:           cfg.Now,
		log:           cfg.Logger,
		rec:           &control.Recorder{},
		faults:        &faults.Injector{},
		redirectMatch: func(registered, requested string) bool { return registered == requested },
		st:            newState(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.dpop = &dpopcheck.Verifier{Now: s.now, Replay: &dpopcheck.ReplayCache{Now: s.now}}
	s.dpopNonce.Rotate()
	for name, d := range map[string]time.Duration{"access token TTL": cfg.AccessTokenTTL, "refresh token TTL": cfg.RefreshTokenTTL, "code TTL": cfg.CodeTTL} {
		if d < 0 {
			return nil, fmt.Errorf("mockas: %s %v is negative", name, d)
		}
	}
	sum := sha256.Sum256([]byte(cfg.Issuer))
	// One cookie per issuer, so two issuers on one host keep separate logins;
	// __Host- pins it to this host, Secure and Path=/ (RFC 6265bis §4.1.3.2).
	s.cookieName = "__Host-mockas_session_" + hex.EncodeToString(sum[:4])

	if s.alg, err = signingAlgorithm(cfg.SigningAlgorithm); err != nil {
		return nil, err
	}
	if err := s.addUsers(cfg.Users); err != nil {
		return nil, err
	}
	if err := s.addClients(cfg.Clients); err != nil {
		return nil, err
	}
	if err := s.setScopes(cfg.ScopesSupported); err != nil {
		return nil, err
	}
	s.workloadIssuers = map[string]crypto.PublicKey{}
	for _, wi := range cfg.WorkloadIssuers {
		if _, err := assertionAlgorithm(wi.PublicKey); err != nil || wi.Issuer == "" {
			return nil, fmt.Errorf("mockas: workload issuer %q: needs an issuer and an EC P-256 or RSA (2048 bits or more) public key", wi.Issuer)
		}
		s.workloadIssuers[wi.Issuer] = wi.PublicKey
	}

	var ok bool
	if s.idjagIssuers, ok = idjagTrust(cfg.IDJAGIssuers); !ok {
		return nil, fmt.Errorf("mockas: an ID-JAG issuer needs an issuer and an EC P-256 or RSA (2048 bits or more) public key")
	}
	if cfg.IDJAG != nil {
		if cfg.IDJAG.Key == nil {
			return nil, fmt.Errorf("mockas: IDJAG needs a signing key")
		}
		s.idjag = cfg.IDJAG
	}

	s.cimdHTTP = newFetchGuard(cfg).client(cfg.RootCAs, cimdFetchTimeout)

	s.control = control.Guard(cfg.ControlSecret, s.controlMux())
	s.handler = s.faults.Wrap(http.HandlerFunc(s.route))

	if err := s.RotateKey(); err != nil {
		return nil, err
	}
	return s, nil
}

// signingAlgorithm is Config.SigningAlgorithm's algorithm; RS256 when
// empty.
func signingAlgorithm(name string) (jose.SignatureAlgorithm, error) {
	switch name {
	case "", "RS256":
		return jose.RS256, nil
	case "ES256":
		return jose.ES256, nil
	}
	return "", fmt.Errorf("mockas: signing algorithm %q is not supported (use RS256 or ES256)", name)
}

// addUsers adds Config.Users, or DefaultUsers when nil (the login page then
// lists them), each with its subject and name defaulting to its username.
func (s *Server) addUsers(users []User) error {
	if users == nil {
		users = DefaultUsers
		s.hint = DefaultUsers
	}
	if len(users) == 0 {
		return errors.New("mockas: no users: nobody could sign in (leave Users nil for the defaults)")
	}
	for i, usr := range users {
		if usr.Username == "" || usr.Password == "" {
			return fmt.Errorf("mockas: user %d: username and password are required", i)
		}
		if usr.Subject == "" {
			usr.Subject = usr.Username
		}
		if usr.Name == "" {
			usr.Name = usr.Username
		}
		if s.users[usr.Username] != nil {
			return fmt.Errorf("mockas: user %q: username repeated", usr.Username)
		}
		if s.usersBySub[usr.Subject] != nil {
			return fmt.Errorf("mockas: user %q: subject %q repeated", usr.Username, usr.Subject)
		}
		s.users[usr.Username] = &usr
		s.usersBySub[usr.Subject] = &usr
	}
	return nil
}

// addClients adds the pre-registered clients of Config.Clients.
func (s *Server) addClients(clients []Client) error {
	for _, c := range clients {
		switch {
		case c.ID == "":
			return errors.New("mockas: a client has no id")
		case strings.HasPrefix(strings.ToLower(c.ID), "https://"):
			return fmt.Errorf("mockas: client %q: a pre-registered client id must not be an https URL: such ids name Client ID Metadata Documents", c.ID)
		case s.clients[c.ID] != nil:
			return fmt.Errorf("mockas: client %q: id repeated", c.ID)
		case len(c.RedirectURIs) == 0:
			return fmt.Errorf("mockas: client %q: needs at least one redirect URI", c.ID)
		}
		for _, ru := range c.RedirectURIs {
			if err := checkRedirectURI(ru); err != nil {
				return fmt.Errorf("mockas: client %q: %w", c.ID, err)
			}
		}
		if err := checkClientKey(c); err != nil {
			return err
		}
		name := c.Name
		if name == "" {
			name = c.ID
		}
		s.clients[c.ID] = &clientInfo{ID: c.ID, Name: name, Secret: c.Secret, PublicKey: c.PublicKey, RedirectURIs: slices.Clone(c.RedirectURIs)}
	}
	return nil
}

// checkClientKey checks a private_key_jwt client's public key: one way to
// authenticate, with a key the server can verify.
func checkClientKey(c Client) error {
	if c.PublicKey == nil {
		return nil
	}
	if c.Secret != "" {
		return fmt.Errorf("mockas: client %q: a secret and a public key are two ways to authenticate; give one", c.ID)
	}
	if _, err := assertionAlgorithm(c.PublicKey); err != nil {
		return fmt.Errorf("mockas: client %q: %w", c.ID, err)
	}
	return nil
}

// setScopes sets the scopes the server accepts (any valid one when
// supported is nil, else those and OpenID Connect's) and advertises.
func (s *Server) setScopes(supported []string) error {
	if supported != nil {
		s.scopes = map[string]bool{}
	}
	for _, sc := range supported {
		if !validScope(sc) {
			return fmt.Errorf("mockas: scope %q is not a valid scope token (RFC 6749 §3.3)", sc)
		}
		s.scopes[sc] = true
	}
	for _, sc := range append(slices.Clone(supported), oidcScopes...) {
		if !slices.Contains(s.advertised, sc) {
			s.advertised = append(s.advertised, sc)
		}
	}
	if s.scopes != nil {
		for _, sc := range oidcScopes {
			s.scopes[sc] = true
		}
	}
	return nil
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
// revoke, jwks, userinfo, logout, register, fault. Control API requests are
// never recorded.
func (s *Server) Recorder() *control.Recorder { return s.rec }

// Faults returns the fault injector that sits in front of every endpoint
// except the control API, the same one /.test/faults drives.
func (s *Server) Faults() *faults.Injector { return s.faults }

// endpoint returns the URL of an endpoint under the issuer, such as
// endpoint("/token").
func (s *Server) endpoint(p string) string { return s.issuer + p }

// reachedKey marks, in a request's context, whether the request got past
// the fault injector.
type reachedKey struct{}

// ServeHTTP routes a request through the fault injector. The endpoints are
// listed in the package documentation. A request that a fault rule answered
// or dropped is recorded as a fault event.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, control.PathPrefix) {
		s.handler.ServeHTTP(w, r)
		return
	}
	reached := new(bool)
	fault := func(outcome string, status int) {
		ev := newEvent(r, "fault")
		ev.Detail["outcome"] = outcome
		s.record(r.Context(), ev, status)
	}
	// An HTTP/1 drop is recorded as soon as the connection is hijacked, before
	// the injector closes it, so a client that sees the drop finds the event.
	fw := &faultWriter{ResponseWriter: w, hijacked: func() {
		if !*reached {
			fault("dropped", 0)
		}
	}}
	defer func() {
		if *reached || fw.dropped {
			return
		}
		// The injector answered, aborted an HTTP/2 stream (a panic with
		// http.ErrAbortHandler, passed on below once recorded), or the
		// client left during an injected delay.
		v := recover()
		switch {
		case v == http.ErrAbortHandler:
			fault("dropped", 0)
		case fw.status != 0:
			fault("status", fw.status)
		default:
			fault("abandoned", 0)
		}
		if v != nil {
			panic(v)
		}
	}()
	s.handler.ServeHTTP(fw, r.WithContext(context.WithValue(r.Context(), reachedKey{}, reached)))
}

// faultWriter notes what the fault injector did with a response.
type faultWriter struct {
	http.ResponseWriter
	status   int
	dropped  bool
	hijacked func() // called once the connection is taken over
}

func (w *faultWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack lets a drop rule close an HTTP/1 connection; on HTTP/2 it fails,
// and the injector aborts the stream instead.
func (w *faultWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := hj.Hijack()
	if err == nil {
		w.dropped = true
		w.hijacked()
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *faultWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// route serves a request that the fault injector let through.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if p, ok := r.Context().Value(reachedKey{}).(*bool); ok {
		*p = true
	}
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
	case p == s.prefix+"/register":
		s.handleRegister(w, r)
	default:
		http.NotFound(w, r)
	}
}

// secretParams are fingerprinted before they reach an event.
var secretParams = map[string]bool{
	"code": true, "code_verifier": true, "refresh_token": true, "client_secret": true,
	"token": true, "password": true, "csrf_token": true, "access_token": true,
	"client_assertion": true, "assertion": true, "subject_token": true,
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
