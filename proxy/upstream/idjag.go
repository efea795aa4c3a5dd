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

	"golang.org/x/oauth2"
)

// Token exchange (RFC 8693) of an ID token for an identity assertion JWT
// authorization grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant;
// the MCP enterprise-managed authorization extension, SEP-990).
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeIDJAG         = "urn:ietf:params:oauth:token-type:id-jag"
)

// IdPClient is the proxy's client at the enterprise identity provider,
// for the exchange.
type IdPClient struct {
	// TokenURL is the identity provider's token endpoint.
	TokenURL string
	// ClientID and Secret authenticate the exchange: HTTP Basic with a
	// secret, the client id alone (a public client) without.
	ClientID, Secret string
}

// ExchangeIDJAG exchanges idToken, the signed-in user's ID token, at the
// identity provider for an ID-JAG for the remote authorization server
// audience (its issuer) and the remote server resource (its protected
// resource metadata's resource). One request: a refusal is an
// *oauth2.RetrieveError (redacted), and the caller decides what follows.
func (c *IdPClient) ExchangeIDJAG(ctx context.Context, hc *http.Client, idToken, audience, resource string) (string, error) {
	form := url.Values{
		"grant_type":           {GrantTypeTokenExchange},
		"requested_token_type": {TokenTypeIDJAG},
		"subject_token":        {idToken},
		"subject_token_type":   {TokenTypeIDToken},
		"audience":             {audience},
		"resource":             {resource},
	}
	g := &Grant{ClientID: c.ClientID}
	resp, err := g.post(ctx, hc, c.TokenURL, form, ClientAuth{Secret: c.Secret})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return "", fmt.Errorf("reading the token exchange response: %w", err)
	}
	var tr struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		Error           string `json:"error"`
		Description     string `json:"error_description"`
		URI             string `json:"error_uri"`
	}
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tr.Error != "" {
		return "", redactError(&oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: tr.Error, ErrorDescription: tr.Description, ErrorURI: tr.URI})
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" || jsonErr != nil {
		return "", fmt.Errorf("the identity provider's token endpoint %s answered %q, not a JSON token exchange response", c.TokenURL, mt)
	}
	switch {
	case tr.AccessToken == "":
		return "", errors.New("the token exchange response has no access_token")
	case tr.IssuedTokenType != TokenTypeIDJAG:
		return "", fmt.Errorf("the identity provider issued a token of type %q, not an ID-JAG (%s)", tr.IssuedTokenType, TokenTypeIDJAG)
	}
	return tr.AccessToken, nil
}
