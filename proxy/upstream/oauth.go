package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Grant is what the proxy needs to get and renew tokens from one remote
// authorization server for one resource. It is stored with the tokens, so a
// refresh needs no new discovery.
type Grant struct {
	Issuer   string   `json:"issuer"`
	AuthURL  string   `json:"auth_url"`
	TokenURL string   `json:"token_url"`
	ClientID string   `json:"client_id"`
	Resource string   `json:"resource"`
	Scopes   []string `json:"scopes,omitempty"`
	// IssRequired is true when the server advertises RFC 9207 iss in
	// authorization responses, which makes iss mandatory at the callback.
	IssRequired bool `json:"iss_required,omitempty"`
	// RevocationURL is the RFC 7009 revocation endpoint, if any.
	RevocationURL string `json:"revocation_url,omitempty"`
	// Method says how the proxy got its client id: "cimd",
	// "preregistered", "dcr" or "static".
	Method Method `json:"method"`
	// SecretInBody sends a confidential client's secret in the form body
	// (client_secret_post) instead of HTTP Basic (client_secret_basic).
	SecretInBody bool `json:"secret_in_body,omitempty"`
	// Audience, when set, is sent as the "audience" parameter (the values
	// space-separated) on the authorization, code exchange, refresh and
	// client credentials requests: the parameter Ory Hydra (and Auth0)
	// read instead of RFC 8707's resource, which they ignore.
	Audience []string `json:"audience,omitempty"`
	// OmitResource leaves the RFC 8707 resource parameter out of every
	// request, for servers that refuse it (Microsoft Entra ID answers
	// AADSTS9010010 when resource and scope name different things).
	OmitResource bool `json:"omit_resource,omitempty"`
	// DPoP asks for tokens bound to a key of the proxy's (RFC 9449): every
	// token request carries a proof of the token's key. DPoPRequired
	// refuses a token the authorization server did not bind.
	DPoP         bool `json:"dpop,omitempty"`
	DPoPRequired bool `json:"dpop_required,omitempty"`
}

// params are the parameters the grant adds to every request it makes:
// resource (unless OmitResource) and audience (when set).
func (g *Grant) params() url.Values {
	v := url.Values{}
	if g.Resource != "" && !g.OmitResource {
		v.Set("resource", g.Resource)
	}
	if len(g.Audience) > 0 {
		v.Set("audience", strings.Join(g.Audience, " "))
	}
	return v
}

func (g *Grant) authCodeOptions() []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	for k, vs := range g.params() {
		opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
	}
	return opts
}

// config builds the x/oauth2 configuration. secret is the client secret
// of a confidential client that authenticates with it, read from
// configuration at each use rather than stored with the tokens.
func (g *Grant) config(redirectURL, secret string) *oauth2.Config {
	style := oauth2.AuthStyleInParams // a public client sends its client_id in the body
	if secret != "" && !g.SecretInBody {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     g.ClientID,
		ClientSecret: secret,
		RedirectURL:  redirectURL,
		Scopes:       g.Scopes,
		Endpoint:     oauth2.Endpoint{AuthURL: g.AuthURL, TokenURL: g.TokenURL, AuthStyle: style},
	}
}

// AuthCodeURL returns the authorization request URL: PKCE S256 from
// verifier, the state, the resource indicator (RFC 8707) unless
// OmitResource, and the audience when set.
func (g *Grant) AuthCodeURL(redirectURL, state, verifier string) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, g.authCodeOptions()...)
	return g.config(redirectURL, "").AuthCodeURL(state, opts...)
}

// Exchange redeems an authorization code with golang.org/x/oauth2, sending
// the PKCE verifier, the resource indicator and the audience as
// AuthCodeURL does, and the client's authentication. A refusal is an
// *oauth2.RetrieveError whose quoted answer is redacted.
func (g *Grant) Exchange(ctx context.Context, hc *http.Client, redirectURL, code, verifier string, auth ClientAuth) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	opts := append([]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, g.authCodeOptions()...)
	secret := auth.Secret
	if auth.Key != nil {
		// x/oauth2 knows no client assertions: the client is public to it,
		// and the assertion goes in as two more parameters.
		secret = ""
		assertion, err := g.assertion(auth)
		if err != nil {
			return nil, fmt.Errorf("signing the client assertion: %w", err)
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", AssertionType), oauth2.SetAuthURLParam("client_assertion", assertion))
	}
	tok, err := g.config(redirectURL, secret).Exchange(ctx, code, opts...)
	return tok, redactError(err)
}

// maxTokenResponse bounds a token endpoint's answer.
const maxTokenResponse = 1 << 20

// Refresh redeems a refresh token (RFC 6749 §6) with the resource indicator
// (RFC 8707 §2.2) unless OmitResource, and the audience when set. golang.org/x/oauth2 cannot add parameters to a refresh
// request, so this one request is written here; its answer is parsed into
// the same types x/oauth2 uses. A refusal is an *oauth2.RetrieveError.
// now is the time the request is sent, from which expires_in counts.
func (g *Grant) Refresh(ctx context.Context, hc *http.Client, refreshToken string, auth ClientAuth, now time.Time) (*oauth2.Token, error) {
	form := g.params()
	form.Set("grant_type", "refresh_token")
	form.Set("refresh_token", refreshToken)
	resp, err := g.post(ctx, hc, g.TokenURL, form, auth)
	if err != nil {
		return nil, err
	}
	tok, err := readToken(resp, g.TokenURL, refreshToken, now)
	return tok, redactError(err)
}

// readToken parses a token endpoint's answer (RFC 6749 §5.1, §5.2) into
// x/oauth2's types. keepRefresh is kept as the refresh token when the
// answer carries none (RFC 6749 §6).
func readToken(resp *http.Response, tokenURL, keepRefresh string, now time.Time) (*oauth2.Token, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("reading the token response: %w", err)
	}
	var tr struct {
		AccessToken  string  `json:"access_token"`
		TokenType    string  `json:"token_type"`
		RefreshToken string  `json:"refresh_token"`
		ExpiresIn    flexInt `json:"expires_in"` // a number, or a string as some servers send (x/oauth2 takes both)
		Scope        string  `json:"scope"`
		Error        string  `json:"error"`
		Description  string  `json:"error_description"`
		URI          string  `json:"error_uri"`
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tr.Error != "" {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: tr.Error, ErrorDescription: tr.Description, ErrorURI: tr.URI}
	}
	if mt != "application/json" || jsonErr != nil {
		return nil, fmt.Errorf("token endpoint %s answered %q, not a JSON token response", tokenURL, mt)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token response has no access_token")
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken}
	if tr.ExpiresIn > 0 {
		tok.ExpiresIn = int64(tr.ExpiresIn)
		tok.Expiry = now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = keepRefresh
	}
	if tr.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": tr.Scope})
	}
	return tok, nil
}

// post sends a form to an endpoint of the authorization server with the
// client's authentication (ClientAuth).
func (g *Grant) post(ctx context.Context, hc *http.Client, endpoint string, form url.Values, auth ClientAuth) (*http.Response, error) {
	basic, err := g.authenticate(form, auth)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(g.ClientID), url.QueryEscape(auth.Secret))
	}
	return hc.Do(req)
}

// Revoke revokes token at the authorization server (RFC 7009). hint is
// "refresh_token" or "access_token". A server without a revocation
// endpoint is not an error: there is nothing to call.
func (g *Grant) Revoke(ctx context.Context, hc *http.Client, token, hint string, auth ClientAuth) error {
	if g.RevocationURL == "" || token == "" {
		return nil
	}
	resp, err := g.post(ctx, hc, g.RevocationURL, url.Values{"token": {token}, "token_type_hint": {hint}}, auth)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation at %s answered %s", g.RevocationURL, resp.Status)
	}
	return nil
}

// ClientCredentials gets a token for the client itself (RFC 6749 §4.4),
// with the resource indicator (unless OmitResource) and the audience,
// authenticated with a secret or a client assertion (the MCP client
// credentials extension's two ways). Used by service account routes.
func (g *Grant) ClientCredentials(ctx context.Context, hc *http.Client, auth ClientAuth, now time.Time) (*oauth2.Token, error) {
	form := g.params()
	form.Set("grant_type", "client_credentials")
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(g.Scopes, " "))
	}
	resp, err := g.post(ctx, hc, g.TokenURL, form, auth)
	if err != nil {
		return nil, err
	}
	tok, err := readToken(resp, g.TokenURL, "", now)
	return tok, redactError(err)
}

// GrantTypeJWTBearer is RFC 7523 §2.1's grant type.
const GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// JWTBearer presents assertion, a JWT the proxy holds, as an authorization
// grant (RFC 7523 §2.1), with the resource indicator (unless OmitResource),
// the audience and the scopes, and the client's authentication when it has
// one (a public client sends only its client_id, and a grant without a
// client id sends none). One request: a refusal is an
// *oauth2.RetrieveError, and the caller decides what follows, never this
// function.
func (g *Grant) JWTBearer(ctx context.Context, hc *http.Client, assertion string, auth ClientAuth, now time.Time) (*oauth2.Token, error) {
	form := g.params()
	form.Set("grant_type", GrantTypeJWTBearer)
	form.Set("assertion", assertion)
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(g.Scopes, " "))
	}
	resp, err := g.post(ctx, hc, g.TokenURL, form, auth)
	if err != nil {
		return nil, err
	}
	tok, err := readToken(resp, g.TokenURL, "", now)
	return tok, redactError(err)
}

// IsRefused reports whether err is the authorization server refusing a grant
// (a 4xx OAuth error): the token must be dropped and the user asked again.
// Anything else (5xx, network) is a failure to reach it: the token is kept.
func IsRefused(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode >= 400 && re.Response.StatusCode < 500
	}
	return false
}
