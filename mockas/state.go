package mockas

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// state is everything the server remembers, guarded by Server.mu. Codes and
// refresh tokens are keyed by their hash, never held in clear.
type state struct {
	flows    map[string]*flow
	sessions map[string]*session
	// consents: subject → client id → approved scopes.
	consents map[string]map[string]map[string]bool
	codes    map[string]*authCode
	refresh  map[string]*refreshRecord
	families map[string]*family
	access   map[string]*accessRecord // by jti
	cimd     map[string]*cimdEntry    // by client id URL
	// registered are the clients of dynamic registration, by client id.
	registered map[string]*clientInfo
	// assertions are the client assertions seen, by client id and jti,
	// until they expire: each is accepted once (RFC 7523 §3).
	assertions map[string]time.Time
}

func newState() state {
	return state{
		flows:    map[string]*flow{},
		sessions: map[string]*session{},
		consents: map[string]map[string]map[string]bool{},
		codes:    map[string]*authCode{},
		refresh:  map[string]*refreshRecord{},
		families: map[string]*family{},
		access:   map[string]*accessRecord{},
		cimd:     map[string]*cimdEntry{},

		registered: map[string]*clientInfo{},
		assertions: map[string]time.Time{},
	}
}

// flowTTL bounds how long a person may take between the authorization
// request and the consent decision.
const flowTTL = 10 * time.Minute

// sessionTTL is how long a login lasts.
const sessionTTL = 12 * time.Hour

// flow is a validated authorization request waiting for login and consent.
type flow struct {
	id        string
	csrf      string // the CSRF token of its forms
	sessionID string // the browser session it is bound to
	client    *clientInfo
	// The validated request.
	redirectURI, state, challenge, resource, nonce string
	scopes                                         []string
	promptLogin, promptConsent                     bool
	// loggedIn is set once a login happened within this flow, so that
	// prompt=login asks only once.
	loggedIn bool
	expires  time.Time
}

// session is a browser's session; sub is empty until the person signs in.
type session struct {
	sub      string
	authTime time.Time
	expires  time.Time
}

// authCode is an issued authorization code.
type authCode struct {
	client                                  *clientInfo
	redirectURI, challenge, resource, nonce string
	sub                                     string
	scopes                                  []string
	authTime, expires                       time.Time
	used                                    bool
	family                                  string // set when redeemed
}

// family is one grant: the tokens issued from one authorization code and
// every refresh since. Revoking it revokes all of them.
type family struct {
	client     *clientInfo
	sub        string
	resource   string
	scopes     []string
	authTime   time.Time
	revoked    bool
	revokedWhy string
	// clientCredentials marks a grant of the client_credentials grant
	// type: its subject is the client, and it has no refresh token.
	clientCredentials bool
	// jkt is the thumbprint of the DPoP key the grant is bound to (RFC
	// 9449 §5): its access tokens name it in cnf, and a refresh must prove
	// possession of it. "" for an unbound grant.
	jkt string
}

// refreshRecord is one refresh token of a family.
type refreshRecord struct {
	family  string
	expires time.Time
	used    bool // rotated: presenting it again revokes the family
}

// accessRecord is one issued access token.
type accessRecord struct {
	family  string
	expires time.Time
	revoked bool
}

// cimdEntry is a cached Client ID Metadata Document.
type cimdEntry struct {
	client  *clientInfo
	expires time.Time
}

// sweep forgets what has expired. Redeemed codes are kept for a refresh
// token lifetime so that a replay is still recognised and still revokes;
// unredeemed ones for flowTTL, so that a late client hears "expired"
// rather than "unknown".
func (st *state) sweep(now time.Time, refreshTTL time.Duration) {
	for k, f := range st.flows {
		if now.After(f.expires) {
			delete(st.flows, k)
		}
	}
	for k, se := range st.sessions {
		if now.After(se.expires) {
			delete(st.sessions, k)
		}
	}
	for k, c := range st.codes {
		if now.After(c.expires.Add(refreshTTL)) || (!c.used && now.After(c.expires.Add(flowTTL))) {
			delete(st.codes, k)
		}
	}
	for k, rt := range st.refresh {
		if now.After(rt.expires) {
			delete(st.refresh, k)
		}
	}
	for k, at := range st.access {
		if now.After(at.expires) {
			delete(st.access, k)
		}
	}
	for k, exp := range st.assertions {
		if now.After(exp.Add(assertionLeeway)) {
			delete(st.assertions, k)
		}
	}
	for k, e := range st.cimd {
		if !now.Before(e.expires) {
			delete(st.cimd, k)
		}
	}
}

// revokeFamily revokes a grant and every token issued under it.
func (st *state) revokeFamily(id, why string) {
	f := st.families[id]
	if f == nil || f.revoked {
		return
	}
	f.revoked = true
	f.revokedWhy = why
}

// randomToken returns 256 random bits, base64url encoded: codes, tokens,
// CSRF values.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomID returns 128 random bits as text: flow, session, family and token
// ids.
func randomID() string { return rand.Text() }

// stats counts what the state holds; tests use it to prove that a refused
// request stored nothing.
type stats struct {
	Flows, Sessions, Codes, UsedCodes, Refresh, Access, Families, Consents, CIMD, Registered int
}

func (s *Server) stats() stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := stats{
		Flows: len(s.st.flows), Sessions: len(s.st.sessions), Codes: len(s.st.codes),
		Refresh: len(s.st.refresh), Access: len(s.st.access), Families: len(s.st.families), CIMD: len(s.st.cimd),
		Registered: len(s.st.registered),
	}
	for _, c := range s.st.codes {
		if c.used {
			st.UsedCodes++
		}
	}
	for _, byClient := range s.st.consents {
		st.Consents += len(byClient)
	}
	return st
}
