package actors

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionType is the client_assertion_type of RFC 7523 §2.2.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Fault makes a private_key_jwt client authenticate wrongly, so that a
// scenario can watch the token endpoint refuse it.
type Fault string

// The faults a scenario can ask for.
const (
	FaultNone        Fault = ""
	FaultOtherKey    Fault = "other-key"      // signed with a key the document does not publish
	FaultAudience    Fault = "wrong-audience" // aud names another server
	FaultExpired     Fault = "expired"        // exp is a minute past
	FaultNoAssertion Fault = "no-assertion"   // no client_assertion at all
	FaultReplay      Fault = "replay"         // the previous assertion again
)

// TokenAnswer is what the token endpoint answered one request.
type TokenAnswer struct {
	Status int
	Body   []byte
}

// Assertions is the HTTP transport of an MCP client that authenticates
// with private_key_jwt (RFC 7523): it turns every token request the MCP Go
// SDK's OAuth handler sends (the code exchange and refreshes, which
// golang.org/x/oauth2 makes as a public client) into one that carries a
// fresh client assertion signed with the client's key, and keeps the
// token endpoint's answers. The SDK has no private_key_jwt of its own, and
// its handler takes an HTTP client, which is the one place to add it.
type Assertions struct {
	ClientID string
	Key      *ecdsa.PrivateKey
	KeyID    string
	Base     http.RoundTripper
	// Lifetime is how long an assertion is valid; 0 means one minute.
	Lifetime time.Duration

	mu       sync.Mutex
	fault    Fault
	last     string
	tokenURL string
	answers  []TokenAnswer
}

// SetKey makes the following assertions signed with key, named kid (the
// client rotated its key).
func (a *Assertions) SetKey(key *ecdsa.PrivateKey, kid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Key, a.KeyID = key, kid
}

// SetFault makes the following token requests authenticate wrongly.
func (a *Assertions) SetFault(f Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fault = f
}

// LastAnswer is the token endpoint's last answer.
func (a *Assertions) LastAnswer() (TokenAnswer, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.answers) == 0 {
		return TokenAnswer{}, false
	}
	return a.answers[len(a.answers)-1], true
}

// TokenURL is the token endpoint the client last used.
func (a *Assertions) TokenURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokenURL
}

// RoundTrip implements http.RoundTripper.
func (a *Assertions) RoundTrip(req *http.Request) (*http.Response, error) {
	form, ok, err := tokenForm(req)
	if err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return a.Base.RoundTrip(req)
	}
	if user, _, basic := req.BasicAuth(); basic && form.Get("client_id") == "" {
		id, _ := url.QueryUnescape(user)
		form.Set("client_id", id)
	}
	a.mu.Lock()
	fault := a.fault
	a.tokenURL = req.URL.String()
	assertion := a.last
	a.mu.Unlock()
	if fault != FaultReplay || assertion == "" {
		if assertion, err = a.sign(req.URL.String(), fault); err != nil {
			return nil, err
		}
	}
	if fault != FaultNoAssertion {
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", assertion)
	}
	a.mu.Lock()
	a.last = assertion
	a.mu.Unlock()
	body := form.Encode()
	out := req.Clone(req.Context())
	out.Header.Del("Authorization")
	out.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	out.ContentLength = int64(len(body))
	resp, err := a.Base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	a.mu.Lock()
	a.answers = append(a.answers, TokenAnswer{Status: resp.StatusCode, Body: b})
	a.mu.Unlock()
	return resp, nil
}

// tokenForm reads the form of a token request (a form POST with a
// grant_type), leaving req's body readable again; ok is false for any
// other request.
func tokenForm(req *http.Request) (url.Values, bool, error) {
	if req.Method != http.MethodPost || req.Body == nil {
		return nil, false, nil
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, false, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, false, err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	form, err := url.ParseQuery(string(b))
	if err != nil || form.Get("grant_type") == "" {
		return nil, false, nil
	}
	return form, true, nil
}

// sign makes a client assertion for the token endpoint aud (RFC 7523 §3):
// iss and sub the client id, a random jti, exp a minute ahead.
func (a *Assertions) sign(aud string, fault Fault) (string, error) {
	a.mu.Lock()
	key, kid := a.Key, a.KeyID
	a.mu.Unlock()
	now, life := time.Now(), a.Lifetime
	if life == 0 {
		life = time.Minute
	}
	switch fault {
	case FaultOtherKey:
		var err error
		if key, err = ecdsa.GenerateKey(key.Curve, rand.Reader); err != nil {
			return "", err
		}
	case FaultAudience:
		aud = "https://another-server.example.org/token"
	case FaultExpired:
		now = now.Add(-life - 2*time.Minute)
	}
	if key == nil {
		return "", errors.New("actors: a private_key_jwt client needs its key")
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	return jwt.Signed(sig).Claims(jwt.Claims{
		Issuer: a.ClientID, Subject: a.ClientID, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(life)), ID: hex.EncodeToString(jti),
	}).Serialize()
}
