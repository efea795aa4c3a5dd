// Package event names every log event the proxy writes: a typed constant
// each, with its level, the keys it carries and what it means. Code writes
// an event only through its constant (Name.Attr); docs/observability.md
// carries the table Catalog returns, and tests keep the two, and the lines
// the proxy writes, equal.
package event

import "log/slog"

// Name is the stable name of a log event, the value of its "event" key.
type Name string

// Attr is the event's "event" attribute.
func (n Name) Attr() slog.Attr { return slog.String("event", string(n)) }

// The events.
const (
	ProxyStarted           Name = "proxy_started"
	AdminStarted           Name = "admin_started"
	ProxyStopped           Name = "proxy_stopped"
	ProxyFailed            Name = "proxy_failed"
	RequestFailed          Name = "request_failed"
	LoginSucceeded         Name = "login_succeeded"
	DiscoveryCompleted     Name = "discovery_completed"
	DiscoveryFailed        Name = "discovery_failed"
	ClientRegistered       Name = "client_registered"
	MCPClientRegistered    Name = "mcp_client_registered"
	AuthorizationFailed    Name = "authorization_failed"
	AuthorizationRefused   Name = "authorization_refused"
	TokenRequestRefused    Name = "token_request_refused"
	TokenAcquired          Name = "token_acquired"
	TokenRefreshed         Name = "token_refreshed"
	TokenRefreshRefused    Name = "token_refresh_refused"
	TokenRefreshFailed     Name = "token_refresh_failed"
	TokenRefreshRecovered  Name = "token_refresh_recovered"
	TokenRejected          Name = "token_rejected"
	ScopeStepUp            Name = "scope_step_up"
	ConnectionRemoved      Name = "connection_removed"
	TokenRevocationFailed  Name = "token_revocation_failed"
	PolicyDenied           Name = "policy_denied"
	ConfigReloaded         Name = "config_reloaded"
	ReloadFailed           Name = "reload_failed"
	TracingEnabled         Name = "tracing_enabled"
	TraceExportFailed      Name = "trace_export_failed"
	TraceExportRecovered   Name = "trace_export_recovered"
	CertificateObtained    Name = "certificate_obtained"
	CertificateFailed      Name = "certificate_failed"
	CertificateUnavailable Name = "certificate_unavailable"
	ACMELibrary            Name = "acme_library"
	AuditFailed            Name = "audit_failed"
	StoreSweepFailed       Name = "store_sweep_failed"
	StoreMigrated          Name = "store_migrated"
	RedisClient            Name = "redis_client"
	HttpLibrary            Name = "http_library"
)

// Doc describes one log event: its stable name, its level, the keys it
// carries beyond time, level and msg, and what it means.
type Doc struct {
	Event   Name
	Level   string
	Keys    []string
	Meaning string
}

// Catalog lists every log event the proxy writes, in the order of the
// docs' table.
func Catalog() []Doc {
	return []Doc{
		{ProxyStarted, "INFO", []string{"listen", "routes", "version"}, "The proxy serves its routes."},
		{AdminStarted, "INFO", []string{"listen"}, "The admin listener serves /metrics, /healthz and /readyz."},
		{ProxyStopped, "INFO", nil, "The proxy stopped after a signal."},
		{ProxyFailed, "ERROR", []string{"error"}, "Serving stopped because of an error."},
		{RequestFailed, "INFO or ERROR", []string{"route", "error_code", "status", "request_id", "host", "path", "cause"}, "A request was answered with an error of the catalog (ERROR for 5xx); cause is the underlying error, when there is one."},
		{LoginSucceeded, "INFO", []string{"route", "user", "request_id"}, "A user signed in at the identity provider."},
		{DiscoveryCompleted, "INFO", []string{"route", "upstream", "cache", "request_id"}, "Discovery for a remote endpoint succeeded; cache is hit or miss."},
		{DiscoveryFailed, "WARN", []string{"route", "upstream", "step", "error", "request_id"}, "Discovery failed at the named step."},
		{ClientRegistered, "INFO", []string{"route", "issuer", "method"}, "The proxy registered the route dynamically (RFC 7591)."},
		{MCPClientRegistered, "INFO", []string{"route", "client_id", "client_name", "application_type", "request_id"}, "An MCP client registered itself at the proxy (RFC 7591); client_name is what it sent, quoted and cut to 120 characters."},
		{AuthorizationFailed, "WARN", []string{"route", "user", "error_code", "issuer", "request_id", "cause"}, "An authorization towards the remote server failed; error_code is the catalog code."},
		{AuthorizationRefused, "INFO", []string{"route", "error_code", "description", "request_id"}, "The proxy refused an MCP client's authorization request and told the client."},
		{TokenRequestRefused, "INFO", []string{"route", "error_code", "description", "request_id"}, "The proxy's token endpoint refused a request."},
		{TokenAcquired, "INFO", []string{"route", "user", "binding", "issuer", "request_id"}, "The proxy obtained a remote token."},
		{TokenRefreshed, "INFO", []string{"route", "user", "binding", "request_id"}, "The proxy refreshed a remote token before it expired."},
		{TokenRefreshRefused, "INFO", []string{"route", "user", "binding", "request_id", "error"}, "The remote authorization server refused a refresh; the token is dropped and the user consents again."},
		{TokenRefreshFailed, "WARN", []string{"route", "user", "binding", "request_id", "error"}, "A refresh failed (the remote authorization server could not be reached or answered a server error); the token is kept and the proxy retries with backoff. Written once per failure streak, at its first attempt; error is the cause."},
		{TokenRefreshRecovered, "INFO", []string{"route", "user", "binding", "request_id", "failed_attempts", "failed_for"}, "A refresh succeeded after a failure streak: failed_attempts attempts had failed over failed_for (a Go duration)."},
		{TokenRejected, "INFO", []string{"route", "user", "binding", "request_id"}, "The remote server answered 401 to a remote token; the token is dropped."},
		{ScopeStepUp, "INFO", []string{"route", "user", "binding", "scopes", "attempt", "request_id"}, "The remote server asked for more scope (403 insufficient_scope)."},
		{ConnectionRemoved, "INFO", []string{"route", "user", "binding", "upstream", "revoked_upstream", "request_id"}, "A user disconnected a remote server."},
		{ConfigReloaded, "INFO", []string{"trigger", "routes"}, "The proxy reloaded its configuration (trigger: SIGHUP, or a file changed); routes are the new routes. Requests in flight finished on the old ones."},
		{ReloadFailed, "ERROR", []string{"trigger", "error"}, "A reload was refused: error has validate's errors (file:line:column), or names a setting only a restart applies. The running configuration stays."},
		{CertificateObtained, "INFO", []string{"host", "renewal", "serial", "not_after"}, "ACME (tls.acme) obtained a certificate for a route's host, or renewed it (renewal: true); serial (hex) and not_after are the new certificate's. Handshakes use it from now on."},
		{CertificateFailed, "WARN", []string{"host", "renewal", "error"}, "An attempt to obtain or renew a route's certificate with ACME failed; error is the CA's answer or why it could not be reached. Attempts go on in the background, after 1, 2, 2, 5 and 10 minutes and then less often; a renewal keeps the old certificate in use meanwhile."},
		{CertificateUnavailable, "WARN", []string{"host", "error"}, "A TLS handshake for a route's host found no certificate, because ACME has not obtained one yet: the client's connection fails. Logged once a minute per host while it lasts."},
		{ACMELibrary, "WARN or ERROR", []string{"logger", "details"}, "A warning or error of certmagic, the ACME library, such as a failed attempt and when it retries; details holds its fields as JSON."},
		{PolicyDenied, "INFO", []string{"route", "user", "method", "name", "rule", "request_id"}, "The access policy refused the user the route (at authorization or on a request; no method then) or a tool, prompt, resource or method; rule names the rule that decided, such as policy.tools[0]."},
		{TokenRevocationFailed, "WARN", []string{"route", "user", "request_id", "error"}, "Revoking a token at the remote authorization server failed; it is deleted at the proxy anyway."},
		{TracingEnabled, "INFO", []string{"endpoint", "protocol", "sampler", "service_name", "settings_from"}, "The proxy sends OpenTelemetry traces to endpoint; settings_from names where each setting came from: the file's field, an OTEL_* variable, or the default."},
		{TraceExportFailed, "WARN", []string{"endpoint", "spans", "error"}, "Sending spans to the trace receiver failed; they are dropped (requests are not affected). Written once per failure streak, at its first export."},
		{TraceExportRecovered, "INFO", []string{"endpoint", "failed_exports", "failed_for"}, "Sending spans works again after a failure streak of failed_exports exports over failed_for (a Go duration)."},
		{AuditFailed, "ERROR", []string{"action", "request_id"}, "An audit line could not be written."},
		{StoreSweepFailed, "WARN", []string{"error"}, "Removing expired records from the store failed."},
		{StoreMigrated, "INFO", []string{"store", "moved", "left"}, "At start, the Redis store moved the records an earlier version wrote under key names in the clear to hashed names (once per storage.prefix); left counts keys that looked like such records but do not open with this key file, and were left in place."},
		{RedisClient, "WARN", nil, "A message of the Redis client library."},
		{HttpLibrary, "WARN", []string{"route"}, "A message of Go's HTTP server or reverse proxy, such as a client that went away mid-answer or a stream the remote server closed; route is set for forwarding."},
	}
}
