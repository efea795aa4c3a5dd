package mockmcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/dpopcheck"
	"github.com/mcp-proxy/mcp-proxy/internal/faults"
)

// Event kinds this server records.
const (
	// KindMCP is a request to the MCP endpoint (the path of ResourceURL).
	KindMCP = "mcp"
	// KindPRM is a request under /.well-known/oauth-protected-resource,
	// answered or not.
	KindPRM = "prm"
	// KindOther is a request to any other path (404), such as a client
	// probing for authorization server metadata on the resource's host.
	KindOther = "other"
)

// Detail keys of recorded events. Values never hold a token.
const (
	DetailMCPMethod          = "mcp_method"           // JSON-RPC method(s) of a POST body, comma-separated for a batch
	DetailToolName           = "tool_name"            // params.name of a tools/call
	DetailMCPSessionID       = "mcp_session_id"       // Mcp-Session-Id request header
	DetailMCPProtocolVersion = "mcp_protocol_version" // MCP-Protocol-Version request header
	DetailLastEventID        = "last_event_id"        // Last-Event-ID request header
	DetailMCPMethodHeader    = "mcp_method_header"    // Mcp-Method request header (2026-07-28)
	DetailMCPNameHeader      = "mcp_name_header"      // Mcp-Name request header (2026-07-28)
	DetailTraceparent        = "traceparent"          // W3C traceparent request header: the trace a proxy continued
	DetailAssignedSessionID  = "assigned_session_id"  // Mcp-Session-Id the response assigned
	DetailBodyInspected      = "body_inspected"       // "false" when a POST body exceeded 1 MiB and was not parsed
	DetailSub                = "sub"                  // verified token's sub
	DetailJTI                = "jti"                  // verified token's jti
	DetailIss                = "iss"                  // verified token's iss
	DetailClientID           = "client_id"            // verified token's client_id
	DetailScope              = "scope"                // verified token's scope
	DetailError              = "error"                // error code answered: invalid_token, invalid_request, insufficient_scope, ...
	DetailErrorDescription   = "error_description"    // why the request was refused
	DetailWWWAuthenticate    = "www_authenticate"     // the challenge sent, if any
	DetailInjectedFault      = "injected_fault"       // a /.test/faults rule answered: FaultStatus, FaultDropped or FaultAbandoned
)

// Values of [DetailInjectedFault]. A delay rule that lets the request
// through leaves no mark; the request is recorded as usual.
const (
	// FaultStatus: the rule answered with its status.
	FaultStatus = "status"
	// FaultDropped: the rule dropped the connection; the event has no
	// status.
	FaultDropped = "dropped"
	// FaultAbandoned: the client gave up during the rule's delay; the event
	// has no status.
	FaultAbandoned = "abandoned"
)

const (
	wellKnownPRM = "/.well-known/oauth-protected-resource"
	// maxInspectedBody bounds how much of a POST body is read to learn the
	// JSON-RPC method; the rest still reaches the SDK untouched.
	maxInspectedBody = 1 << 20
	// maxSeenTokenIDs bounds the jtis remembered for Revocation.Seen.
	maxSeenTokenIDs = 10000
)

// prmSite is one place protected resource metadata can be served from.
type prmSite struct {
	path     string       // URL path it is served at
	url      string       // named in challenges
	handler  http.Handler // serves the document
	audience string       // an audience accepted besides ResourceURL; "" = none
}

// Server is the mock MCP server: an OAuth-protected resource server speaking
// MCP over Streamable HTTP. It is an http.Handler; see the package comment
// for its endpoints.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	rec    *control.Recorder
	faults *faults.Injector
	host   string // canonical host[:port] of ResourceURL
	origin string // scheme://host[:port] of ResourceURL, the start of every htu

	mcpPath  string
	prm      map[PRMLocation]prmSite // PRMPathSuffixed and PRMRoot
	verifier *verifier               // nil without AuthorizationServers
	sdk      http.Handler            // the SDK, for NoAuth
	sdkAuth  http.Handler            // the SDK behind auth.RequireBearerToken, for verified requests
	healthz  http.Handler            // /healthz, behind the fault injector
	reached  http.Handler            // recorded requests, behind the fault injector
	control  http.Handler

	initial    Settings
	settings   atomic.Pointer[Settings] // never modified once stored
	settingsMu sync.Mutex               // serializes read-modify-write of settings

	// dpop verifies DPoP proofs while Settings.DPoP is on, remembering
	// their jtis.
	dpop *dpopcheck.Verifier

	mu        sync.Mutex
	revoked   map[string]bool
	seenJTIs  map[string]bool
	dpopNonce dpopcheck.Nonce // what proofs must carry while Settings.DPoPNonce is on
	lastDPoP  *LastDPoP       // the last request accepted with a DPoP-bound token

	// stepHook, when set, is called by the slow tool at its start (step 0)
	// and after each step's progress notification. Tests use it to hold the
	// tool while they read the stream.
	stepHook atomic.Pointer[func(ctx context.Context, step int)]
}

// New checks cfg and returns a server. It makes no network calls: the
// authorization servers' keys are fetched on the first token check.
func New(cfg Config) (*Server, error) {
	resource, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.Now,
		rec:      &control.Recorder{},
		faults:   &faults.Injector{},
		host:     canonicalHost(resource.Scheme, resource.Host),
		prm:      map[PRMLocation]prmSite{},
		revoked:  map[string]bool{},
		seenJTIs: map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.dpop = &dpopcheck.Verifier{Now: s.now, Replay: &dpopcheck.ReplayCache{Now: s.now}}
	s.dpopNonce.Rotate()
	s.mcpPath = resource.Path
	if s.mcpPath == "" {
		s.mcpPath = "/"
	}
	challengeScopes := cfg.ChallengeScopes
	if challengeScopes == nil {
		challengeScopes = cfg.ScopesSupported
	}
	s.initial = Settings{PRM: cfg.PRM, ChallengeScopes: challengeScopes, ToolScopes: cfg.ToolScopes, NoAuth: cfg.NoAuth}.clone()
	st := s.initial.clone()
	s.settings.Store(&st)

	origin := resource.Scheme + "://" + resource.Host
	s.origin = origin
	name := cfg.ResourceName
	if name == "" {
		name = "Mock MCP server"
	}
	// RFC 9728 §3.1: a terminating slash after the host is removed.
	pathSuffixed := wellKnownPRM
	if resource.Path != "/" {
		pathSuffixed += resource.Path
	}
	for loc, site := range map[PRMLocation]prmSite{
		PRMPathSuffixed: {path: pathSuffixed},
		// With the metadata at the root, "resource" is the origin, so a
		// client following RFC 8707 asks the AS for a token for the origin:
		// that audience is accepted too.
		PRMRoot: {path: wellKnownPRM, audience: origin},
	} {
		prmResource := cfg.ResourceURL
		if loc == PRMRoot {
			prmResource = origin
		}
		if site.audience == cfg.ResourceURL {
			site.audience = ""
		}
		site.url = origin + (&url.URL{Path: site.path}).EscapedPath()
		site.handler = auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
			Resource:               prmResource,
			AuthorizationServers:   slices.Clone(cfg.AuthorizationServers),
			ScopesSupported:        slices.Clone(cfg.ScopesSupported),
			BearerMethodsSupported: []string{"header"},
			ResourceName:           name,
		})
		s.prm[loc] = site
	}

	if len(cfg.AuthorizationServers) > 0 {
		client := cfg.HTTPClient
		if client == nil {
			client = http.DefaultClient
		}
		s.verifier = &verifier{issuers: map[string]*keySource{}, external: map[string]bool{}, audiences: []string{cfg.ResourceURL}, now: s.now}
		for _, iss := range cfg.ExternalIssuers {
			s.verifier.external[iss] = true
		}
		for _, iss := range cfg.AuthorizationServers {
			s.verifier.issuers[iss] = &keySource{issuer: iss, client: client, now: s.now, log: s.log}
		}
	}

	mcpSrv := s.newMCPServer()
	s.sdk = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcpSrv }, &mcp.StreamableHTTPOptions{
		// In the harness every request arrives over loopback (127.0.0.1 or a
		// published container port) carrying a real-looking Host such as
		// remote-mcp.provider.com, which the SDK's DNS-rebinding guard would
		// refuse with 403. The proxy in front validates Host and Origin, and
		// this server checks Host against ResourceURL itself (AllowAnyHost).
		DisableLocalhostProtection: true,
		// Resumability, so a proxy's Last-Event-ID relay can be tested.
		EventStore: mcp.NewMemoryEventStore(nil),
		Logger:     s.log.With("component", "mcp_sdk"),
	})
	// The SDK learns who is calling only through auth.RequireBearerToken.
	// The token was already verified; this hands the result over, so that
	// tools see it and the SDK binds each session to its user (a request
	// with another user's token on the session gets 403).
	s.sdkAuth = auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		id, _ := ctx.Value(identityCtxKey{}).(*Identity)
		if id == nil {
			return nil, fmt.Errorf("%w: the token was not verified", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{
			Scopes: id.Scopes,
			UserID: id.Issuer + " " + id.Subject,
			Extra:  map[string]any{identityKey: id},
			// Expiration stays zero: exp was checked against Config.Now,
			// and the SDK would check it again against the wall clock.
		}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(s.sdk)

	s.healthz = s.faults.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		control.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.reached = s.faults.Wrap(http.HandlerFunc(s.serveReached))

	mux := http.NewServeMux()
	mux.Handle(control.PathPrefix+"events", control.EventsHandler(s.rec))
	mux.HandleFunc(control.PathPrefix+"counters", s.serveCounters)
	mux.Handle(control.PathPrefix+"faults", s.faults.ControlHandler())
	mux.HandleFunc(control.PathPrefix+"settings", s.serveSettings)
	mux.HandleFunc(control.PathPrefix+"tokens", s.serveTokens)
	mux.HandleFunc(control.PathPrefix+"last-dpop", s.serveLastDPoP)
	mux.HandleFunc(control.PathPrefix+"rotate-dpop-nonce", s.serveRotateDPoPNonce)
	s.control = control.Guard(cfg.ControlSecret, mux)
	return s, nil
}

type identityCtxKey struct{}

// Recorder returns the recorder holding every request the server received
// (except /healthz and the control API).
func (s *Server) Recorder() *control.Recorder { return s.rec }

// ResourceMetadataURL returns the protected resource metadata URL that the
// challenge names under the current settings, or "" when there is none
// (PRMAbsent, NoAuth).
func (s *Server) ResourceMetadataURL() string { return s.prmURL(s.settings.Load()) }

func (s *Server) prmURL(st *Settings) string {
	if st.NoAuth {
		return ""
	}
	return s.prm[st.PRM].url // "" for PRMAbsent
}

// ServeHTTP routes a request; see the package comment for the endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, control.PathPrefix):
		s.control.ServeHTTP(w, r)
	case p == "/healthz":
		s.healthz.ServeHTTP(w, r)
	default:
		s.serveRecorded(w, r)
	}
}

func (s *Server) kindOf(p string) string {
	switch {
	case p == s.mcpPath:
		return KindMCP
	case p == wellKnownPRM || strings.HasPrefix(p, wellKnownPRM+"/"):
		return KindPRM
	}
	return KindOther
}

// request is one recorded request on its way through the fault injector.
type request struct {
	ev        *control.Event
	st        *Settings // the settings when the request arrived
	calls     []rpcCall // the JSON-RPC messages of an MCP POST
	inspected bool      // false when the body was too large to parse
	reached   bool      // no fault rule answered it
	panicked  bool      // the handler (or a drop rule) aborted it
}

type requestCtxKey struct{}

// serveRecorded records the request, then passes it through the fault
// injector, so that requests a fault rule answered are recorded too.
func (s *Server) serveRecorded(w http.ResponseWriter, r *http.Request) {
	ev := &control.Event{
		Time:   s.now(),
		Kind:   s.kindOf(r.URL.Path),
		Method: r.Method,
		Host:   r.Host,
		Path:   r.URL.Path,
		Detail: map[string]string{},
	}
	if h := r.Header.Get("Authorization"); h != "" {
		ev.Authorization = fingerprintAuthorization(h)
	}
	req := &request{ev: ev, st: s.settings.Load(), inspected: true}
	if ev.Kind == KindMCP {
		req.calls, req.inspected = s.noteMCPRequest(r, ev)
	}
	sessionID := r.Header.Get("Mcp-Session-Id")
	rw := &recordingWriter{ResponseWriter: w}
	rw.onHeader = func(status int, hdr http.Header) {
		ev.Status = status
		switch {
		case req.reached:
		case req.panicked:
			ev.Detail[DetailInjectedFault] = FaultDropped
		case status == 0:
			ev.Detail[DetailInjectedFault] = FaultAbandoned
		default:
			ev.Detail[DetailInjectedFault] = FaultStatus
		}
		if sid := hdr.Get("Mcp-Session-Id"); sid != "" && sid != sessionID {
			ev.Detail[DetailAssignedSessionID] = sid
		}
		if len(ev.Detail) == 0 {
			ev.Detail = nil
		}
		s.rec.Record(*ev)
		s.logEvent(r.Context(), ev)
	}
	defer func() {
		if p := recover(); p != nil {
			// A drop rule aborts the handler: record the request without a
			// status, then let net/http cut the connection.
			req.panicked = true
			rw.started(0)
			panic(p)
		}
		if req.reached {
			rw.started(http.StatusOK) // net/http answers 200 to a handler that wrote nothing
		} else {
			rw.started(0)
		}
	}()
	s.reached.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), requestCtxKey{}, req)))
}

// noteMCPRequest puts the MCP headers and the JSON-RPC methods of a POST
// body into the event.
func (s *Server) noteMCPRequest(r *http.Request, ev *control.Event) (calls []rpcCall, inspected bool) {
	for key, header := range map[string]string{
		DetailMCPSessionID:       "Mcp-Session-Id",
		DetailMCPProtocolVersion: "MCP-Protocol-Version",
		DetailLastEventID:        "Last-Event-ID",
		DetailMCPMethodHeader:    "Mcp-Method",
		DetailMCPNameHeader:      "Mcp-Name",
		DetailTraceparent:        "Traceparent",
	} {
		if v := r.Header.Get(header); v != "" {
			ev.Detail[key] = v
		}
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, true
	}
	calls, inspected = inspectBody(r)
	var methods []string
	for _, c := range calls {
		if c.Method != "" {
			methods = append(methods, c.Method)
		}
		if c.Method == "tools/call" && c.Tool != "" {
			ev.Detail[DetailToolName] = c.Tool
		}
	}
	if len(methods) > 0 {
		ev.Detail[DetailMCPMethod] = strings.Join(methods, ",")
	}
	if !inspected {
		ev.Detail[DetailBodyInspected] = "false"
	}
	return calls, inspected
}

// serveReached handles a recorded request that no fault rule answered.
func (s *Server) serveReached(w http.ResponseWriter, r *http.Request) {
	req := r.Context().Value(requestCtxKey{}).(*request)
	req.reached = true
	ev := req.ev
	if ev.Kind != KindOther && !s.hostOK(r.Host) {
		s.refuse(w, ev, http.StatusMisdirectedRequest, "misdirected_request",
			fmt.Sprintf("this server is %s; the request named host %s", s.cfg.ResourceURL, r.Host), "")
		return
	}
	switch ev.Kind {
	case KindPRM:
		if site, ok := s.prm[req.st.PRM]; ok && !req.st.NoAuth && r.URL.Path == site.path {
			site.handler.ServeHTTP(w, r)
			return
		}
		s.refuse(w, ev, http.StatusNotFound, "not_found", "no protected resource metadata at "+r.URL.Path, "")
	case KindMCP:
		s.serveMCP(w, r, req)
	default:
		s.refuse(w, ev, http.StatusNotFound, "not_found", "nothing at "+r.URL.Path+"; the MCP endpoint is "+s.mcpPath, "")
	}
}

func (s *Server) serveMCP(w http.ResponseWriter, r *http.Request, req *request) {
	ev, st := req.ev, req.st
	if st.NoAuth {
		s.sdk.ServeHTTP(w, r)
		return
	}
	tok, scheme, fail := s.extractToken(r, st)
	if fail != nil {
		s.challenge(w, req, fail)
		return
	}
	var also []string
	if a := s.prm[st.PRM].audience; a != "" {
		also = append(also, a)
	}
	id, err := s.verifier.verify(r.Context(), tok, also...)
	var te *tokenError
	switch {
	case errors.As(err, &te):
		s.challenge(w, req, &authFailure{status: http.StatusUnauthorized, code: "invalid_token", desc: te.Description})
		return
	case err != nil:
		s.refuse(w, ev, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot verify the token now: "+err.Error(), "")
		return
	}
	if st.DPoP {
		if f := s.checkDPoP(r, req, scheme, tok, id); f != nil {
			s.challenge(w, req, f)
			return
		}
	}
	id.Fingerprint = control.Fingerprint(tok)
	ev.Detail[DetailSub] = id.Subject
	ev.Detail[DetailJTI] = id.TokenID
	ev.Detail[DetailIss] = id.Issuer
	ev.Detail[DetailClientID] = id.ClientID
	ev.Detail[DetailScope] = strings.Join(id.Scopes, " ")

	s.mu.Lock()
	revoked := s.revoked[id.TokenID]
	if !revoked && len(s.seenJTIs) < maxSeenTokenIDs {
		s.seenJTIs[id.TokenID] = true
	}
	s.mu.Unlock()
	if revoked {
		s.challenge(w, req, &authFailure{status: http.StatusUnauthorized, code: "invalid_token", desc: "the token was revoked (test control API)"})
		return
	}
	if len(st.ToolScopes) > 0 {
		if !req.inspected {
			s.refuse(w, ev, http.StatusRequestEntityTooLarge, "request_too_large",
				fmt.Sprintf("this server checks tool scopes and reads at most %d bytes of a request", maxInspectedBody), "")
			return
		}
		for _, c := range req.calls {
			need, ok := st.ToolScopes[c.Tool]
			if c.Method != "tools/call" || !ok || id.hasScopes(need) {
				continue
			}
			scopes := slices.Clone(st.ChallengeScopes)
			for _, sc := range need {
				if !slices.Contains(scopes, sc) {
					scopes = append(scopes, sc)
				}
			}
			s.challenge(w, req, &authFailure{
				status: http.StatusForbidden, code: "insufficient_scope", scopes: scopes,
				desc: fmt.Sprintf("tool %s needs scope %s; the token has scope [%s]", c.Tool, strings.Join(need, " "), strings.Join(id.Scopes, " ")),
			})
			return
		}
	}
	if st.DPoP {
		s.acceptedDPoP(r)
		if st.DPoPNonce {
			w.Header().Set("DPoP-Nonce", s.DPoPNonce())
		}
		// The SDK's middleware reads Bearer credentials only; the token
		// was verified above, so it gets it under that name.
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", schemeBearer+" "+tok)
	}
	s.sdkAuth.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityCtxKey{}, id)))
}

// authFailure is a refused request that gets a Bearer (or, while
// Settings.DPoP is on, a DPoP) challenge.
type authFailure struct {
	status int
	code   string // "" for a request without credentials (RFC 6750 section 3.1)
	desc   string
	scopes []string // nil = the challenge scopes
	nonce  bool     // use_dpop_nonce: the answer names the nonce in DPoP-Nonce
}

// extractToken takes the token from the Authorization header, the one
// method this server supports (RFC 6750 §2.1; MCP forbids the query), and
// the scheme it came with: Bearer, or DPoP while Settings.DPoP is on (RFC
// 9449 §7.1).
func (s *Server) extractToken(r *http.Request, st *Settings) (tok, scheme string, f *authFailure) {
	if r.URL.Query().Has("access_token") {
		return "", "", &authFailure{status: http.StatusBadRequest, code: "invalid_request",
			desc: "access tokens in the URI query are not accepted; send Authorization: " + challengeScheme(st) + " (RFC 6750 section 2.1, MCP authorization)"}
	}
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", "", &authFailure{status: http.StatusUnauthorized, desc: "no access token"}
	case len(vals) > 1:
		return "", "", &authFailure{status: http.StatusBadRequest, code: "invalid_request", desc: "more than one Authorization header"}
	}
	sent, cred, _ := strings.Cut(vals[0], " ")
	scheme = canonicalScheme(st, sent)
	if scheme == "" {
		// An unsupported method counts as no credentials: no error code.
		return "", "", &authFailure{status: http.StatusUnauthorized, desc: "the Authorization scheme is not " + challengeScheme(st)}
	}
	cred = strings.TrimLeft(cred, " ")
	if !isToken68(cred) {
		return "", "", &authFailure{status: http.StatusBadRequest, code: "invalid_request",
			desc: "the " + scheme + " credentials are malformed: want one b64token (RFC 6750 section 2.1)"}
	}
	return cred, scheme, nil
}

// isToken68 matches the b64token of RFC 6750 §2.1.
func isToken68(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// challenge answers with a Bearer challenge (RFC 6750 §3, RFC 9728 §5.1),
// or a DPoP one naming the accepted algorithms while Settings.DPoP is on
// (RFC 9449 §7.1).
func (s *Server) challenge(w http.ResponseWriter, req *request, f *authFailure) {
	scopes := f.scopes
	if scopes == nil {
		scopes = req.st.ChallengeScopes
	}
	prmURL := s.prmURL(req.st)
	desc := headerSafe(f.desc)
	var params []string
	if f.code != "" {
		params = append(params, `error="`+f.code+`"`, `error_description="`+desc+`"`)
	}
	scheme := challengeScheme(req.st)
	if scheme == schemeDPoP {
		params = append(params, `algs="`+dpopAlgs+`"`)
	}
	if f.nonce {
		w.Header().Set("DPoP-Nonce", s.DPoPNonce())
	}
	if prmURL != "" {
		params = append(params, `resource_metadata="`+prmURL+`"`)
	}
	if len(scopes) > 0 {
		params = append(params, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	value := scheme
	if len(params) > 0 {
		value += " " + strings.Join(params, ", ")
	}
	bodyCode := f.code
	if bodyCode == "" {
		bodyCode = "unauthorized"
		if scheme == schemeDPoP {
			desc = "a DPoP-bound token is required (" + desc + ")"
		} else {
			desc = "a bearer token is required (" + desc + ")"
		}
		if prmURL != "" {
			desc += "; see resource_metadata in WWW-Authenticate"
		}
	}
	s.refuse(w, req.ev, f.status, bodyCode, desc, value)
}

func (s *Server) refuse(w http.ResponseWriter, ev *control.Event, status int, code, desc, challenge string) {
	ev.Detail[DetailError] = code
	ev.Detail[DetailErrorDescription] = desc
	if challenge != "" {
		ev.Detail[DetailWWWAuthenticate] = challenge
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// headerSafe keeps only the characters RFC 6750 §3 allows in
// error_description: printable ASCII without '"' and '\'.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '"':
			b[i] = '\''
		case c == '\\' || c < 0x20 || c > 0x7e:
			b[i] = '?'
		}
	}
	return string(b)
}

func (s *Server) hostOK(host string) bool {
	if s.cfg.AllowAnyHost {
		return true
	}
	return canonicalHost(s.scheme(), host) == s.host
}

func (s *Server) scheme() string {
	scheme, _, _ := strings.Cut(s.cfg.ResourceURL, ":")
	return scheme
}

// canonicalHost lower-cases host and drops the scheme's default port.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return host
}

// fingerprintAuthorization fingerprints the token of the Bearer or DPoP
// scheme (so that a DPoP-bound token has the fingerprint the authorization
// server recorded when it issued it), or the whole header value for another
// scheme, so nothing secret is ever stored.
func fingerprintAuthorization(h string) string {
	if tok := bearerToken(h); tok != "" {
		return control.Fingerprint(tok)
	}
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, schemeDPoP) && strings.TrimSpace(tok) != "" {
		return control.Fingerprint(strings.TrimSpace(tok))
	}
	return control.Fingerprint(h)
}

type rpcCall struct {
	Method string
	Tool   string
}

// inspectBody reads up to maxInspectedBody bytes of a POST body to learn its
// JSON-RPC method(s), and puts the body back for the SDK. inspected is false
// when the body was larger and was not parsed.
func inspectBody(r *http.Request) (calls []rpcCall, inspected bool) {
	buf, _ := io.ReadAll(io.LimitReader(r.Body, maxInspectedBody+1))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if len(buf) > maxInspectedBody {
		return nil, false
	}
	type msg struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	var msgs []msg
	trimmed := bytes.TrimSpace(buf)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		_ = json.Unmarshal(trimmed, &msgs)
	} else {
		var m msg
		if json.Unmarshal(trimmed, &m) == nil {
			msgs = []msg{m}
		}
	}
	for _, m := range msgs {
		c := rpcCall{Method: m.Method}
		if m.Method == "tools/call" {
			var p struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(m.Params, &p)
			c.Tool = p.Name
		}
		calls = append(calls, c)
	}
	return calls, true
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (s *Server) logEvent(ctx context.Context, ev *control.Event) {
	level := slog.LevelInfo
	if ev.Status >= 500 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("kind", ev.Kind),
		slog.String("method", ev.Method),
		slog.String("host", ev.Host),
		slog.String("path", ev.Path),
		slog.Int("status", ev.Status),
	}
	if ev.Authorization != "" {
		attrs = append(attrs, slog.String("authorization", ev.Authorization))
	}
	keys := make([]string, 0, len(ev.Detail))
	for k := range ev.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, slog.String(k, ev.Detail[k]))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// recordingWriter notes the status when the response starts and keeps
// flushing working, so server-sent events stream unbuffered.
type recordingWriter struct {
	http.ResponseWriter
	onHeader func(status int, hdr http.Header)
	once     sync.Once
}

func (w *recordingWriter) started(status int) {
	w.once.Do(func() { w.onHeader(status, w.ResponseWriter.Header()) })
}

func (w *recordingWriter) WriteHeader(status int) {
	if status >= 200 {
		w.started(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.started(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *recordingWriter) Flush() {
	w.started(http.StatusOK)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// FlushError lets http.ResponseController report flush failures.
func (w *recordingWriter) FlushError() error {
	w.started(http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Flusher = (*recordingWriter)(nil)
