// Package metrics is the proxy's Prometheus instrumentation and its admin
// listener's handler (/metrics, /healthz, /readyz).
//
// Every metric is named mcp_proxy_* and listed by Catalog, from which the
// collectors are built, so the documentation's table can be checked against
// the code. Metrics live in their own registry, never the global default.
//
// Label values are closed sets: routes are the configured hosts, and every
// other label takes one of the typed constants below (or an error catalog
// code), so the number of series stays bounded.
//
// Hot path: the per-request methods (TokenCache, UpstreamRequest) look up
// series already resolved for the route and do not allocate; the others use
// WithLabelValues, which costs one small allocation for its variadic
// arguments, acceptable on paths that already make network calls.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
)

// Metric names.
const (
	NameTokenCacheRequests    = "mcp_proxy_token_cache_requests_total"
	NameAuthorizationDuration = "mcp_proxy_authorization_duration_seconds"
	NameUpstreamDuration      = "mcp_proxy_upstream_request_duration_seconds"
	NameErrors                = "mcp_proxy_errors_total"
	NameDiscoveryCache        = "mcp_proxy_discovery_cache_requests_total"
	NameTokenRefreshes        = "mcp_proxy_token_refreshes_total"
	NameRegistrations         = "mcp_proxy_registrations_total"
	NameBuildInfo             = "mcp_proxy_build_info"
	NamePolicyDecisions       = "mcp_proxy_policy_decisions_total"
	NameStoreStaleReads       = "mcp_proxy_store_stale_reads_total"
	NameConfigReloads         = "mcp_proxy_config_reloads_total"
	NameTokensAcquired        = "mcp_proxy_upstream_tokens_acquired_total"
)

// PolicyDecision is how an access policy decided a request.
type PolicyDecision string

// Policy decisions.
const (
	PolicyAllowed PolicyDecision = "allowed"
	PolicyDenied  PolicyDecision = "denied"
)

// ReloadResult is how a configuration reload ended.
type ReloadResult string

// Reload results.
const (
	ReloadSuccess ReloadResult = "success"
	// ReloadFailure: the file was refused; the running configuration stays.
	ReloadFailure ReloadResult = "failure"
)

// CacheResult is how a token cache lookup was answered.
type CacheResult string

// Token cache results.
const (
	// CacheHit: a usable upstream token was in the store.
	CacheHit CacheResult = "hit"
	// CacheMiss: there was none; the user must consent.
	CacheMiss CacheResult = "miss"
	// CacheRefresh: the token was due, in its refresh window (a refresh
	// starts in the background) or expired (the request waits for one).
	CacheRefresh CacheResult = "refresh"
)

// DiscoveryResult is how a discovery cache lookup was answered.
type DiscoveryResult string

// Discovery cache results.
const (
	DiscoveryHit  DiscoveryResult = "hit"
	DiscoveryMiss DiscoveryResult = "miss"
)

// AuthOutcome is how a downstream authorization flow ended.
type AuthOutcome string

// Authorization flow outcomes.
const (
	// AuthGranted: the MCP client got a code.
	AuthGranted AuthOutcome = "granted"
	// AuthDenied: the user or the remote authorization server said no.
	AuthDenied AuthOutcome = "denied"
	// AuthFailed: an error ended the flow.
	AuthFailed AuthOutcome = "failed"
)

// RefreshResult is how an upstream token refresh ended.
type RefreshResult string

// Refresh results.
const (
	RefreshSuccess RefreshResult = "success"
	// RefreshRefused: the authorization server refused the refresh token
	// (invalid_grant): the user must consent again.
	RefreshRefused RefreshResult = "refused"
	// RefreshFailed: the refresh could not be done (network, server error).
	RefreshFailed RefreshResult = "failed"
)

// RegistrationMethod is how the proxy got a client id at an upstream
// authorization server.
type RegistrationMethod string

// Registration methods.
const (
	// RegistrationCIMD: a client ID metadata document URL.
	RegistrationCIMD RegistrationMethod = "cimd"
	// RegistrationPreregistered: a client id from the configuration.
	RegistrationPreregistered RegistrationMethod = "preregistered"
	// RegistrationDCR: dynamic client registration (RFC 7591).
	RegistrationDCR RegistrationMethod = "dcr"
)

// Description describes one metric, for the documentation.
type Description struct {
	Name string
	// Type is counter, histogram or gauge.
	Type   string
	Labels []string
	Help   string
	// Buckets are a histogram's upper bounds in seconds.
	Buckets []float64
}

var (
	// authBuckets cover a human in the loop: sign-in and consent take
	// seconds to minutes (FlowTTL is 10 minutes).
	authBuckets = []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// upstreamBuckets cover the time to the remote server's response
	// headers, from a fast tool call to a slow one.
	upstreamBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
)

// Catalog lists every metric the proxy exports (besides the Go runtime and
// process collectors, go_* and process_*).
func Catalog() []Description {
	return []Description{
		{NameTokenCacheRequests, "counter", []string{"route", "result"},
			"Upstream token lookups for proxied requests, by result: hit, miss (the user must consent) or refresh (the token was due: in its refresh window or expired).", nil},
		{NameAuthorizationDuration, "histogram", []string{"route", "outcome"},
			"Duration of downstream authorization flows, from the MCP client's authorize request to the code, by outcome: granted, denied or failed.", authBuckets},
		{NameUpstreamDuration, "histogram", []string{"route", "code"},
			"Time from forwarding a request to the remote MCP server's response headers, by HTTP status code (\"error\" when no response came).", upstreamBuckets},
		{NameErrors, "counter", []string{"route", "type"},
			"Errors answered to clients, by error catalog code (see the troubleshooting guide); route is empty when no route matched.", nil},
		{NameDiscoveryCache, "counter", []string{"result"},
			"Lookups of discovered upstream authorization metadata, by result: hit or miss.", nil},
		{NameTokenRefreshes, "counter", []string{"route", "result"},
			"Upstream token refresh attempts, by result: success, refused (the user must consent again) or failed (every attempt of a failure streak counts).", nil},
		{NameTokensAcquired, "counter", []string{"route", "grant", "proof"},
			"Upstream tokens the proxy obtained (not refreshes), by grant: authorization_code (the user consented), client_credentials, jwt_bearer (a workload's JWT) or enterprise (an identity provider's assertion); and by proof: dpop for a token bound to the proxy's key, bearer otherwise.", nil},
		{NameRegistrations, "counter", []string{"method"},
			"Client registrations with upstream authorization servers, by method: cimd, preregistered or dcr.", nil},
		{NamePolicyDecisions, "counter", []string{"route", "decision"},
			"Access policy decisions on routes with a policy, one per request and authorization, by decision: allowed or denied.", nil},
		{NameStoreStaleReads, "counter", []string{"namespace"},
			"Records of the request path served from the proxy's memory because the store could not be reached, by namespace: access (an MCP client's token) or upstream (a remote token). Each had been read from the store within the last 15 minutes; an expired one is refused all the same.", nil},
		{NameConfigReloads, "counter", []string{"result"},
			"Configuration reloads (SIGHUP, or a changed configuration or certificate file), by result: success, or failure when the file was refused and the running configuration stayed.", nil},
		{NameBuildInfo, "gauge", []string{"version"},
			"Always 1; the version label is the running mcp-proxy's version.", nil},
	}
}

// Metrics are the proxy's collectors in their own registry. The methods
// are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	tokenCache       *prometheus.CounterVec
	authDuration     *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	discovery        *prometheus.CounterVec
	refreshes        *prometheus.CounterVec
	registrations    *prometheus.CounterVec
	acquired         *prometheus.CounterVec
	buildInfo        *prometheus.GaugeVec
	policy           *prometheus.CounterVec
	staleReads       *prometheus.CounterVec
	reloads          *prometheus.CounterVec

	mu     sync.RWMutex
	routes map[string]*routeSeries
}

// routeSeries are a route's hot-path series, resolved once.
type routeSeries struct {
	cacheHit, cacheMiss, cacheRefresh prometheus.Counter
	policyAllowed, policyDenied       prometheus.Counter

	mu       sync.RWMutex
	upstream map[int]prometheus.Observer // by status code
}

// New returns the proxy's metrics in a new registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), routes: make(map[string]*routeSeries)}
	for _, d := range Catalog() {
		switch d.Name {
		case NameTokenCacheRequests:
			m.tokenCache = counter(d)
		case NameAuthorizationDuration:
			m.authDuration = histogram(d)
		case NameUpstreamDuration:
			m.upstreamDuration = histogram(d)
		case NameErrors:
			m.errors = counter(d)
		case NameDiscoveryCache:
			m.discovery = counter(d)
		case NameTokenRefreshes:
			m.refreshes = counter(d)
		case NameRegistrations:
			m.registrations = counter(d)
		case NameTokensAcquired:
			m.acquired = counter(d)
		case NamePolicyDecisions:
			m.policy = counter(d)
		case NameStoreStaleReads:
			m.staleReads = counter(d)
		case NameConfigReloads:
			m.reloads = counter(d)
		case NameBuildInfo:
			m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.Name, Help: d.Help}, d.Labels)
		}
	}
	m.reg.MustRegister(m.tokenCache, m.authDuration, m.upstreamDuration, m.errors, m.discovery, m.refreshes, m.acquired,
		m.registrations, m.buildInfo, m.policy, m.staleReads, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func counter(d Description) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
}

func histogram(d Description) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: d.Buckets}, d.Labels)
}

// Registry returns the registry, to gather from or to add collectors to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) route(route string) *routeSeries {
	m.mu.RLock()
	rs := m.routes[route]
	m.mu.RUnlock()
	if rs != nil {
		return rs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rs = m.routes[route]; rs == nil {
		rs = &routeSeries{
			cacheHit:      m.tokenCache.WithLabelValues(route, string(CacheHit)),
			cacheMiss:     m.tokenCache.WithLabelValues(route, string(CacheMiss)),
			cacheRefresh:  m.tokenCache.WithLabelValues(route, string(CacheRefresh)),
			policyAllowed: m.policy.WithLabelValues(route, string(PolicyAllowed)),
			policyDenied:  m.policy.WithLabelValues(route, string(PolicyDenied)),
			upstream:      make(map[int]prometheus.Observer),
		}
		m.routes[route] = rs
	}
	return rs
}

// TokenCache counts an upstream token lookup for route.
func (m *Metrics) TokenCache(route string, result CacheResult) {
	rs := m.route(route)
	switch result {
	case CacheHit:
		rs.cacheHit.Inc()
	case CacheMiss:
		rs.cacheMiss.Inc()
	case CacheRefresh:
		rs.cacheRefresh.Inc()
	default:
		m.tokenCache.WithLabelValues(route, string(result)).Inc()
	}
}

// codeLabel is the code label of a status; "error" when there was no
// response.
func codeLabel(code int) string {
	if code <= 0 {
		return "error"
	}
	return strconv.Itoa(code)
}

// UpstreamRequest records how long the remote MCP server of route took to
// send its response headers; code is the HTTP status, or 0 when no
// response came (connection refused, timeout).
func (m *Metrics) UpstreamRequest(route string, code int, d time.Duration) {
	rs := m.route(route)
	rs.mu.RLock()
	o := rs.upstream[code]
	rs.mu.RUnlock()
	if o == nil {
		o = m.upstreamDuration.WithLabelValues(route, codeLabel(code))
		rs.mu.Lock()
		rs.upstream[code] = o
		rs.mu.Unlock()
	}
	o.Observe(d.Seconds())
}

// Policy counts an access policy decision on route (per request: no
// allocation).
func (m *Metrics) Policy(route string, d PolicyDecision) {
	rs := m.route(route)
	if d == PolicyDenied {
		rs.policyDenied.Inc()
		return
	}
	rs.policyAllowed.Inc()
}

// AuthorizationFlow records a downstream authorization flow that took d.
func (m *Metrics) AuthorizationFlow(route string, outcome AuthOutcome, d time.Duration) {
	m.authDuration.WithLabelValues(route, string(outcome)).Observe(d.Seconds())
}

// Error counts an error answered to a client, by its catalog code. route
// is empty when no route matched the request.
func (m *Metrics) Error(route string, code apierror.Code) {
	m.errors.WithLabelValues(route, string(code)).Inc()
}

// DiscoveryCache counts a lookup of discovered upstream metadata.
func (m *Metrics) DiscoveryCache(result DiscoveryResult) {
	m.discovery.WithLabelValues(string(result)).Inc()
}

// Refresh counts an upstream token refresh for route.
func (m *Metrics) Refresh(route string, result RefreshResult) {
	m.refreshes.WithLabelValues(route, string(result)).Inc()
}

// TokenAcquired counts an upstream token obtained on route with grant
// (authorization_code, client_credentials, jwt_bearer, enterprise);
// bound says it is DPoP-bound.
func (m *Metrics) TokenAcquired(route, grant string, bound bool) {
	proof := "bearer"
	if bound {
		proof = "dpop"
	}
	m.acquired.WithLabelValues(route, grant, proof).Inc()
}

// Registration counts a client registration at an upstream authorization
// server.
func (m *Metrics) Registration(method RegistrationMethod) {
	m.registrations.WithLabelValues(string(method)).Inc()
}

// StoreStaleRead counts a record of namespace served from memory while
// the store could not be reached.
func (m *Metrics) StoreStaleRead(namespace string) {
	m.staleReads.WithLabelValues(namespace).Inc()
}

// Reload counts a configuration reload.
func (m *Metrics) Reload(result ReloadResult) {
	m.reloads.WithLabelValues(string(result)).Inc()
}

// BuildInfo sets mcp_proxy_build_info{version} to 1, replacing any earlier
// version.
func (m *Metrics) BuildInfo(version string) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version).Set(1)
}

// AdminHandler serves the admin listener:
//
//   - /metrics: the metrics in Prometheus text (or OpenMetrics) format;
//   - /healthz: 200 "ok" while the process serves;
//   - /readyz: 200 "ready" when ready returns nil (or is nil), else 503
//     with ready's error as the reason. The reason is shown to whoever can
//     reach the admin listener: it must not hold a secret.
//
// Other paths are 404; methods other than GET and HEAD are 405.
func AdminHandler(m *Metrics, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		plain(w, http.StatusOK, "ready")
	})
	return mux
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(body + "\n"))
}
