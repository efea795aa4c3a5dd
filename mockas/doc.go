// Package mockas is a mock OAuth 2.1 authorization server that is also an
// OpenID Connect identity provider. The conformance harness runs the proxy
// against it in two roles, one issuer per [Server]: the remote MCP server's
// authorization server (https://auth.provider.com) and the operator's
// identity provider (https://idp.example.com).
//
// It behaves like the strictest real server, because a mock that accepts
// anything lets a broken proxy pass: PKCE S256 only (plain and missing are
// refused), exact redirect URI match, single-use codes whose replay revokes
// what they issued, refresh token rotation with reuse detection, resource
// indicators checked at every step, Client ID Metadata Documents fetched
// through an SSRF guard and validated to the letter, and every parameter at
// most once.
//
// # Endpoints
//
// {issuer} is Config.Issuer; {path} is its path ("" when it has none).
//
//	GET  /.well-known/oauth-authorization-server{path}   RFC 8414 metadata
//	GET  /.well-known/openid-configuration{path}         the same document (OIDC discovery)
//	GET  {path}/.well-known/openid-configuration         the same document (OIDC discovery)
//	GET  {issuer}/authorize   authorization request → login page, consent page or redirect
//	POST {issuer}/login       login form
//	GET  {issuer}/consent?flow=ID, POST {issuer}/consent   consent page and decision
//	GET|POST {issuer}/logout  ends the browser's login session
//	POST {issuer}/token       authorization_code, refresh_token and client_credentials grants
//	POST {issuer}/revoke      RFC 7009 revocation
//	POST {issuer}/register    RFC 7591 dynamic client registration (only while switched on)
//	GET  {issuer}/jwks        JSON Web Key Set, public keys only
//	GET|POST {issuer}/userinfo  OIDC UserInfo (bearer access token with openid scope)
//	GET  /healthz             200 "ok"
//
// # Test-control API
//
// Under /.test/, guarded by Config.ControlSecret (sent as "Authorization:
// Bearer <secret>"; an empty secret makes every path 404). No control
// request is recorded as an event, and no fault rule applies to one.
//
//	GET|DELETE   /.test/events       recorded events (?kind=), or forget them
//	GET|POST|DELETE /.test/faults    fault rules of package internal/faults (status, drop, delay)
//	GET|PATCH    /.test/settings     lifetimes and switches ([Settings]); PATCH names only what changes
//	POST         /.test/rotate-key   [Server.RotateKey]
//	POST         /.test/revoke-user  {"subject":"alice"}: [Server.RevokeUser]; 404 for an unknown subject
//	GET          /.test/counters     events recorded so far, by kind
//	POST         /.test/rotate-dpop-nonce  a new DPoP nonce ([Server.RotateDPoPNonce]), answered as {"dpop_nonce":"..."}
//
// # Clients
//
// A client is pre-registered ([Config.Clients]), a Client ID Metadata
// Document URL (while [Settings].CIMD is on), or registered at /register
// (while [Settings].DCR is on). Registration is open (no initial access
// token); client ids it issues start with "dcr-". It applies the RFC 7591
// defaults: token_endpoint_auth_method client_secret_basic, grant_types
// authorization_code (so no refresh token unless refresh_token is
// registered too), response_types code. Supported are the methods none,
// client_secret_basic and client_secret_post (a registered client must use
// the method it registered) and the grants authorization_code,
// refresh_token and client_credentials. Registration errors are
// invalid_redirect_uri and invalid_client_metadata.
//
// The client_credentials grant (RFC 6749 §4.4) is for confidential clients
// only (else unauthorized_client). Its access token has sub = client_id,
// aud = the resource parameter (else the client id), the requested scope
// (openid, email and profile are refused: there is no user), and no
// auth_time; there is no refresh token.
//
// # Forms
//
// The login page's form posts to {issuer}/login with the fields username,
// password, flow (hidden) and csrf_token (hidden); its button reads "Sign
// in". A wrong password renders the form again with status 401. The consent
// page's form posts to {issuer}/consent with flow and csrf_token (hidden)
// and one of two buttons: name="decision" value="approve" ("Allow") or
// value="deny" ("Deny"). The forms are bound to the browser by the login
// session cookie (__Host-mockas_session_<8 hex digits of the issuer's
// SHA-256>, Secure, HttpOnly, SameSite=Lax, Path=/), which /authorize sets,
// so a headless client needs a cookie jar. Pages send X-Frame-Options: DENY
// and a Content-Security-Policy with frame-ancestors 'none' and no scripts.
//
// An error found before the client and its redirect URI are validated is an
// HTML page with status 400 whose elements #error and #error_description
// carry the OAuth error code and text; later errors redirect with error,
// error_description, state and iss.
//
// # Events
//
// Each request records a [control.Event] with Kind, Method, Host, Path and
// Status; secrets appear only as [control.Fingerprint]s.
//
//	metadata    Detail: document (oauth-authorization-server | openid-configuration)
//	authorize   Params: the request's parameters. Detail: outcome (login_page, consent_page,
//	            code_issued), flow, sub, code (fingerprint), error, error_description
//	login       Params: flow, username, client_id. Detail: sub, outcome, error
//	consent     Params: flow, decision, client_id. Detail: sub, scope, outcome (consent_page,
//	            login_page, code_issued, denied), code, error
//	cimd_fetch  Host, Path of the document; Params: url. Status: the HTTP status (0 when no
//	            response). Detail: error, or client_name and cache_seconds
//	token       Params: grant_type, client_id, resource, scope, redirect_uri and fingerprints of
//	            code, code_verifier, refresh_token, client_secret. Detail: auth_method, and
//	            access_token, refresh_token, id_token (fingerprints), jti, sub, aud, scope,
//	            token_type (Bearer or DPoP); or error, error_description. With a DPoP header:
//	            dpop_proof (valid, invalid, or unverified while DPoP is off), dpop_jkt and
//	            dpop_jti (once the proof's signature verified), dpop_nonce ("sent" when the
//	            proof carried a nonce)
//	revoke      Params: token (fingerprint), token_type_hint, client_id. Detail: revoked, jti, error
//	jwks        Detail: keys (how many)
//	userinfo    Authorization: the token's fingerprint. Detail: sub, jti, or error
//	logout      Detail: sub
//	register    Params: client_name, token_endpoint_auth_method, redirect_uris (space-separated),
//	            grant_types, response_types, scope, as sent. Detail: client_id and
//	            client_secret (fingerprint), or error, error_description
//	fault       a request a fault rule answered or dropped instead of the server. Status: the
//	            injected status (0 when dropped). Detail: outcome (status, dropped, or
//	            abandoned when the client gave up during an injected delay)
//
// # Tokens
//
// Access tokens are JWTs (RFC 9068, typ at+jwt) with iss, sub, aud (the
// authorized resource, else the client id), exp, iat, nbf, jti, scope,
// client_id and auth_time. ID tokens carry iss, sub, aud (the client id),
// exp, iat, auth_time, nonce, at_hash, azp, and email (email scope) and
// name (profile scope). Both are signed with the current key of
// [Server.JWKS]; [Server.RotateKey] adds a key and keeps the old ones
// published.
//
// # DPoP
//
// While [Settings].DPoP is on (RFC 9449), the metadata offers
// dpop_signing_alg_values_supported ["ES256"] and the token endpoint
// verifies the DPoP header of every grant's request with package
// internal/dpopcheck: one ES256 proof of typ dpop+jwt carrying its public
// jwk, htm POST, htu {issuer}/token, iat within 60 s, a jti not used before.
// A valid proof binds what is issued to its key: the access token carries
// cnf.jkt, token_type is DPoP, and a refresh token can be redeemed only with
// a proof of the same key ("the refresh token is bound to another key"); an
// unbound grant refreshed with a proof becomes bound. A request without a
// DPoP header still gets a Bearer token. A bad proof is refused with 400
// invalid_dpop_proof. While [Settings].DPoPNonce is on too, a proof without
// the current nonce gets 400 use_dpop_nonce with the nonce in DPoP-Nonce,
// and every successful answer names it in DPoP-Nonce as well. Off, a DPoP
// header is ignored (only noted in the event).
package mockas
