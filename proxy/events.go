package proxy

// EventDoc describes one log event: its stable name, its level, the keys
// it carries beyond time, level and msg, and what it means. docs/
// observability.md carries the same table; a test keeps them, and the
// events the code writes, equal.
type EventDoc struct {
	Event   string
	Level   string
	Keys    []string
	Meaning string
}

// Events lists every log event the proxy writes.
func Events() []EventDoc {
	return []EventDoc{
		{"proxy_started", "INFO", []string{"listen", "routes", "version"}, "The proxy serves its routes."},
		{"admin_started", "INFO", []string{"listen"}, "The admin listener serves /metrics, /healthz and /readyz."},
		{"proxy_stopped", "INFO", nil, "The proxy stopped after a signal."},
		{"proxy_failed", "ERROR", []string{"error"}, "Serving stopped because of an error."},
		{"request_failed", "INFO or ERROR", []string{"route", "error_code", "status", "request_id", "host", "path", "cause"}, "A request was answered with an error of the catalog (ERROR for 5xx); cause is the underlying error, when there is one."},
		{"login_succeeded", "INFO", []string{"route", "user", "request_id"}, "A user signed in at the identity provider."},
		{"discovery_completed", "INFO", []string{"route", "upstream", "cache", "request_id"}, "Discovery for a remote endpoint succeeded; cache is hit or miss."},
		{"discovery_failed", "WARN", []string{"route", "upstream", "step", "error", "request_id"}, "Discovery failed at the named step."},
		{"client_registered", "INFO", []string{"route", "issuer", "method"}, "The proxy registered the route dynamically (RFC 7591)."},
		{"mcp_client_registered", "INFO", []string{"route", "client_id", "client_name", "application_type", "request_id"}, "An MCP client registered itself at the proxy (RFC 7591); client_name is what it sent, quoted and cut to 120 characters."},
		{"authorization_failed", "WARN", []string{"route", "user", "error_code", "issuer", "request_id", "cause"}, "An authorization towards the remote server failed; error_code is the catalog code."},
		{"authorization_refused", "INFO", []string{"route", "error_code", "description", "request_id"}, "The proxy refused an MCP client's authorization request and told the client."},
		{"token_request_refused", "INFO", []string{"route", "error_code", "description", "request_id"}, "The proxy's token endpoint refused a request."},
		{"token_acquired", "INFO", []string{"route", "user", "binding", "issuer", "request_id"}, "The proxy obtained a remote token."},
		{"token_refreshed", "INFO", []string{"route", "user", "binding", "request_id"}, "The proxy refreshed a remote token before it expired."},
		{"token_refresh_refused", "INFO", []string{"route", "user", "binding", "request_id", "error"}, "The remote authorization server refused a refresh; the token is dropped and the user consents again."},
		{"token_refresh_failed", "WARN", []string{"route", "user", "binding", "request_id", "error"}, "A refresh failed (the remote authorization server could not be reached or answered a server error); the token is kept and the proxy retries with backoff. Written once per failure streak, at its first attempt; error is the cause."},
		{"token_refresh_recovered", "INFO", []string{"route", "user", "binding", "request_id", "failed_attempts", "failed_for"}, "A refresh succeeded after a failure streak: failed_attempts attempts had failed over failed_for (a Go duration)."},
		{"token_rejected", "INFO", []string{"route", "user", "binding", "request_id"}, "The remote server answered 401 to a remote token; the token is dropped."},
		{"scope_step_up", "INFO", []string{"route", "user", "binding", "scopes", "attempt", "request_id"}, "The remote server asked for more scope (403 insufficient_scope)."},
		{"connection_removed", "INFO", []string{"route", "user", "binding", "upstream", "revoked_upstream", "request_id"}, "A user disconnected a remote server."},
		{"token_revocation_failed", "WARN", []string{"route", "user", "request_id", "error"}, "Revoking a token at the remote authorization server failed; it is deleted at the proxy anyway."},
		{"audit_failed", "ERROR", []string{"action", "request_id"}, "An audit line could not be written."},
		{"store_sweep_failed", "WARN", []string{"error"}, "Removing expired records from the store failed."},
		{"redis_client", "WARN", nil, "A message of the Redis client library."},
		{"http_library", "WARN", []string{"route"}, "A message of Go's HTTP server or reverse proxy, such as a client that went away mid-answer or a stream the remote server closed; route is set for forwarding."},
	}
}
