// Package mockmcp is the conformance harness's remote MCP server: an OAuth
// 2.1 protected resource (RFC 6750, RFC 9068, RFC 9728) speaking MCP over
// Streamable HTTP with the official Go SDK. It plays
// https://remote-mcp.provider.com/mcp behind the proxy under test.
//
// It is strict on purpose: a mock that accepts anything lets a broken proxy
// pass. Every refusal says precisely why, in the challenge, in the JSON body
// and in the recorded event.
//
// # Endpoints
//
//   - The path of Config.ResourceURL (e.g. /mcp): MCP, stateful Streamable
//     HTTP (POST, GET stream, DELETE; sessions; resumption with
//     Last-Event-ID). Every request needs a valid bearer token unless
//     Settings.NoAuth.
//   - /.well-known/oauth-protected-resource/mcp (PRMPathSuffixed, default) or
//     /.well-known/oauth-protected-resource (PRMRoot): protected resource
//     metadata with resource, authorization_servers, scopes_supported,
//     bearer_methods_supported ["header"] and resource_name. "resource" is
//     Config.ResourceURL for the path-suffixed document and the origin of it
//     (no trailing slash) for the root one. Every other well-known path, and
//     both with PRMAbsent or NoAuth, answer 404. Settings.PRM picks the
//     location; it can change while the server runs.
//   - GET /healthz: 200 {"status":"ok"}, not recorded.
//   - /.test/...: the control API, below.
//   - Anything else: 404, recorded as kind "other".
//
// # Control API
//
// Guarded by Config.ControlSecret (Authorization: Bearer <secret>), 404
// when the secret is empty, never recorded and never faulted:
//   - /.test/events: GET the recorded events (?kind=), DELETE forgets them.
//   - /.test/counters: GET, per kind, how many events are recorded.
//   - /.test/faults: the rules of package internal/faults (POST one rule
//     {"path","method","count","status","drop","delay"}, GET, DELETE); see
//     [Server.Faults].
//   - /.test/settings: GET, PATCH (JSON [Settings]; fields left out keep
//     their value, unknown fields are refused), DELETE (startup settings).
//   - /.test/tokens: GET the revoked and the seen token ids ([TokenIDs]),
//     POST adds revocations ([Revocation]), PUT replaces them, DELETE
//     clears them.
//   - /.test/last-dpop: GET the method, URL and raw Authorization and DPoP
//     headers of the last request accepted with a DPoP-bound token
//     ([LastDPoP]), so a scenario can replay it; 404 before there is one.
//   - /.test/rotate-dpop-nonce: POST replaces the DPoP nonce
//     ([Server.RotateDPoPNonce]).
//
// Fault rules apply to every request but the control API, /healthz
// included. A request a rule answered or dropped is still recorded, with
// [DetailInjectedFault] saying what happened.
//
// # Host check
//
// The MCP endpoint and the metadata answer 421 Misdirected Request when the
// Host header does not name ResourceURL's host (unless Config.AllowAnyHost):
// a proxy that forwards its own Host upstream is caught here.
//
// The SDK's DNS-rebinding protection (StreamableHTTPOptions.
// DisableLocalhostProtection) is off: in the harness every request arrives
// over loopback carrying a real-looking Host such as remote-mcp.provider.com,
// which that protection refuses with 403. The proxy in front validates Host
// and Origin, and the Host check above still applies.
//
// # Tokens
//
// A token is accepted only when all of these hold:
//   - it arrives as "Authorization: Bearer <b64token>", once; a token in the
//     query string, two Authorization headers or malformed credentials get
//     400 error="invalid_request";
//   - it is a JWS compact JWT with alg RS256, ES256 or PS256 (never none or
//     HS*), typ "at+jwt" or "application/at+jwt" (RFC 9068 §4), no crit;
//   - iss equals one of Config.AuthorizationServers exactly, and the
//     signature verifies with a key (by kid) from that issuer's JWKS, found
//     through its RFC 8414 metadata, else OpenID Connect discovery, and
//     cached (refetched after 10 min, or once per 10 s at most when a kid is
//     unknown);
//   - aud contains Config.ResourceURL exactly; with PRMRoot, the origin is
//     accepted too, since that is the "resource" the metadata advertises and
//     so what an RFC 8707 client asks the AS for;
//   - exp is present and not past, nbf (if present) not future, iat present
//     and not future, each with 30 s of clock skew, by Config.Now;
//   - sub, client_id and jti are present (RFC 9068 §2.2);
//   - its jti is not revoked through /.test/tokens ([Server.Revoke]).
//
// A verified token's issuer and subject become the SDK's session user: a
// request on a session with another user's token gets the SDK's 403.
//
// # Challenges
//
// Without credentials (no Authorization header, or a scheme other than
// Bearer), RFC 6750 §3.1 has no error code:
//
//	401 WWW-Authenticate: Bearer resource_metadata="<PRM URL>", scope="<challenge scopes>"
//
// For a refused token:
//
//	401 WWW-Authenticate: Bearer error="invalid_token", error_description="<reason>", resource_metadata="<PRM URL>", scope="<challenge scopes>"
//
// For a malformed request, the same with 400 and error="invalid_request".
// For a tools/call of a tool listed in Settings.ToolScopes whose scopes the
// token lacks, the same with 403, error="insufficient_scope" and scope
// listing the challenge scopes plus the tool's. resource_metadata is absent
// with PRMAbsent and scope when there are no challenge scopes. The body is
// always {"error":"...","error_description":"..."} ("unauthorized" when the
// challenge carries no error code). When the issuer's keys cannot be
// fetched the answer is 503 "temporarily_unavailable" without a challenge.
//
// # Tools
//
//   - whoami (no arguments): [WhoAmI] as structured output and as JSON text.
//   - echo {"text"}: returns the text.
//   - slow {"steps","interval_ms"}: takes steps (default 3, up to 1000),
//     waiting interval_ms (default 100, 0 for none, up to 60000) of real time
//     before each, and sends a progress notification after each when the
//     call has a progress token. The answer is an SSE stream on which the
//     priming event and each notification are flushed as they happen; it
//     holds a response stream open for a proxy to relay.
//
// # DPoP
//
// While Settings.DPoP is on (RFC 9449 §7), a token must be DPoP-bound
// (cnf.jkt) and presented as "Authorization: DPoP <token>" with one DPoP
// header: an ES256 proof of typ dpop+jwt with its public jwk, htm the
// request's method (POST, GET and DELETE alike), htu this server's URL of
// the request, ath the token's hash, iat within 60 s, a jti not used
// before, and a key whose thumbprint is the token's cnf.jkt. Package
// internal/dpopcheck verifies it. Every challenge then uses the DPoP scheme
// with algs="ES256":
//
//	401 WWW-Authenticate: DPoP algs="ES256", resource_metadata="<PRM URL>", scope="<challenge scopes>"
//	401 WWW-Authenticate: DPoP error="invalid_dpop_proof", error_description="<reason>", algs="ES256", ...
//
// A bound token presented as a bearer token, a Bearer presentation at all,
// and an unbound token presented with DPoP get invalid_token. While
// Settings.DPoPNonce is on too, a proof without the current nonce gets 401
// error="use_dpop_nonce" with the nonce in DPoP-Nonce, and every accepted
// request's answer names it in DPoP-Nonce as well. Off, nothing changes:
// Bearer only, and the DPoP scheme counts as no credentials.
//
// # Events
//
// Every request except /healthz and the control API is recorded as a
// [control.Event] when its response starts (so an open SSE stream is
// already visible), or when it ends without an answer (a dropped
// connection, a client that gave up): Kind [KindMCP], [KindPRM] or
// [KindOther]; Method, Host,
// Path, Status; Authorization is the fingerprint of the bearer token (of the
// whole header value for another scheme), never the token. Detail holds the
// Detail* keys of this package, such as mcp_method, tool_name,
// mcp_session_id, traceparent, sub, jti, iss, error and error_description;
// while DPoP is on, also auth_scheme, token_jkt, dpop_proof, dpop_jkt,
// dpop_jti, dpop_nonce and dpop_ath (see [DetailAuthScheme]). The
// Authorization of a DPoP presentation is the fingerprint of its token.
//
// Logs use log/slog: one "request" line per recorded event with the same
// keys, plus jwks_fetched, jwks_fetch_failed, jwks_stale, settings_changed,
// settings_reset, tokens_revoked, revocations_cleared and dpop_nonce_rotated.
// They never contain a token.
package mockmcp
