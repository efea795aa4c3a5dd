package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/connect"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

var (
	bpRequestField = regexp.MustCompile(`name="request" value="([^"]+)"`)
	bpCSRFField    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// bpAuthorization is one opGrant in progress: who authorizes which MCP
// client on which route, under which binding.
type bpAuthorization struct {
	rt           *bpRoute
	user, client string
	id           *bpIdentity
	sid          string // the user's browser session on rt
	origin       string // rt's URL
	consented    bool   // the user consented at the remote authorization server in this operation
}

// opGrant authorizes an MCP client for a user on a route through the
// proxy's endpoints: authorize, consent (the first time), the remote
// authorization server (when the proxy holds no token for the binding),
// the proxy's upstream callback, and the code exchange.
func (r *bpRun) opGrant() *bpViolation {
	a := r.chooseAuthorization()
	r.note("grant: %s authorizes %s on %s (binding %s, held: %v)", bpShow(a.user), a.client, a.rt.host, a.id.name, a.id.present)
	a.sid, a.origin = r.session(a.rt, a.user), "https://"+a.rt.host
	rec, v := r.authorize(a)
	if v != nil {
		return v
	}
	if refused, v := r.sharedTokenRefused(a, rec); refused {
		return v
	}
	if rec.Code != http.StatusFound {
		return r.fail(bpFlow, "authorize/consent answered %d %s", rec.Code, rec.Body)
	}
	loc, v := r.location(rec)
	if v != nil {
		return v
	}
	if loc, v = r.remoteAuthorization(a, loc); v != nil {
		return v
	}
	code, v := r.clientRedirect(a, loc)
	if v != nil {
		return v
	}
	tr, gr, v := r.exchangeCode(a, code)
	if v != nil {
		return v
	}
	if v := r.checkGrantKey(a.id, gr); v != nil {
		return v
	}
	if a.consented {
		if v := r.checkConsentStored(a.id, a.user); v != nil {
			return v
		}
	}
	r.recordGrant(a, tr, gr)
	if a.consented && r.tamper != nil {
		r.tamper(r, a.id)
	}
	return nil
}

// chooseAuthorization picks a route, a user and an MCP client; half the
// time, when some grants lost their binding's token, those of one of them.
func (r *bpRun) chooseAuthorization() *bpAuthorization {
	rt, user, client := bpPick(r.rng, r.routes), bpPick(r.rng, r.users), bpPick(r.rng, bpClients)
	var lost []*bpGrant
	for _, g := range r.grants {
		if !g.id.present {
			lost = append(lost, g)
		}
	}
	if len(lost) > 0 && r.rng.IntN(2) == 0 { // an MCP client authorizes again after a challenge
		g := bpPick(r.rng, lost)
		rt, user, client = g.route, g.user, g.client
	}
	return &bpAuthorization{rt: rt, user: user, client: client, id: r.bindingOf(rt, user)}
}

// bindingOf returns the binding a new grant of user on rt belongs to: the
// user's under per_user, one of its own under per_session, the route's
// under service_account.
func (r *bpRun) bindingOf(rt *bpRoute, user string) *bpIdentity {
	switch rt.binding {
	case config.BindingPerUser:
		return r.identity(rt.host+" "+bpShow(user), rt, user)
	case config.BindingPerSession:
		return r.identity(fmt.Sprintf("%s %s authorization@op%d", rt.host, bpShow(user), r.op), rt, user)
	default:
		return r.identity(rt.host, rt, "")
	}
}

// authorize sends the MCP client's authorization request in the user's
// browser and, when the proxy shows its consent form, approves it.
func (r *bpRun) authorize(a *bpAuthorization) (*httptest.ResponseRecorder, *bpViolation) {
	q := url.Values{"response_type": {"code"}, "client_id": {a.client}, "redirect_uri": {bpRedirect},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"},
		"resource": {a.origin + "/mcp"}, "state": {fmt.Sprintf("cs%d", r.op)}}
	rec := r.browse(http.MethodGet, a.origin+authserver.PathAuthorize+"?"+q.Encode(), a.sid, nil)
	if rec.Code != http.StatusOK {
		return rec, nil
	}
	req, csrf := bpRequestField.FindStringSubmatch(rec.Body.String()), bpCSRFField.FindStringSubmatch(rec.Body.String())
	if req == nil || csrf == nil {
		return nil, r.fail(bpFlow, "authorize answered 200 without a consent form: %s", rec.Body)
	}
	return r.browse(http.MethodPost, a.origin+authserver.PathConsent, a.sid, url.Values{"request": {req[1]}, "csrf": {csrf[1]}, "decision": {"approve"}}), nil
}

// sharedTokenRefused says whether the model expects the proxy to refuse
// the authorization (a user other than the admin on a service_account
// route whose shared token is not connected), and checks that it did.
func (r *bpRun) sharedTokenRefused(a *bpAuthorization, rec *httptest.ResponseRecorder) (bool, *bpViolation) {
	if a.rt.binding != config.BindingServiceAccount || a.id.present || a.user == bpAdmin {
		return false, nil
	}
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "service_account_not_connected") {
		return true, r.fail(bpModel, "%s authorized on %s, whose shared token is not connected: %d %s", bpShow(a.user), a.rt.host, rec.Code, rec.Body)
	}
	r.stats.refusedGrants++
	return true, nil
}

func (r *bpRun) location(rec *httptest.ResponseRecorder) (*url.URL, *bpViolation) {
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		return nil, r.fail(bpFlow, "Location %q: %v", rec.Header().Get("Location"), err)
	}
	return loc, nil
}

// remoteAuthorization follows the proxy's redirect loc. To the remote
// authorization server, the user consents there and the proxy's upstream
// callback redirects on: it returns that redirect. A redirect straight
// back to the MCP client is right only when the proxy holds the binding's
// token.
func (r *bpRun) remoteAuthorization(a *bpAuthorization, loc *url.URL) (*url.URL, *bpViolation) {
	if loc.Host != bpASHost {
		if !a.id.present {
			return nil, r.fail(bpBinding, "the proxy issued %s a code for %s without a remote consent: it holds a remote token under that binding's key, which the test never issued for it (key collision?)",
				bpShow(a.user), a.id.name)
		}
		return loc, nil
	}
	if a.id.present {
		return nil, r.fail(bpModel, "the proxy sent %s to the remote authorization server although it holds the token of %s", bpShow(a.user), a.id.name)
	}
	aq := loc.Query()
	if aq.Get("client_id") != bpASClientID || aq.Get("redirect_uri") != a.origin+connect.PathCallback || aq.Get("resource") != bpUpstreamURL ||
		aq.Get("code_challenge_method") != "S256" || aq.Get("state") == "" {
		return nil, r.fail(bpFlow, "authorization request to the remote authorization server: %s", loc)
	}
	return r.upstreamCallback(a, r.mintCode(a.id, aq), aq.Get("state"))
}

// mintCode is the user's consent at the remote authorization server: an
// authorization code for id's binding, with the lifetime of the token the
// code exchange will answer.
func (r *bpRun) mintCode(id *bpIdentity, aq url.Values) string {
	code := fmt.Sprintf("ac-op%d", r.op)
	var lifetime int64
	if r.rng.IntN(10) != 0 { // 2 minutes to 2 hours; some tokens say no expiry
		lifetime = int64(10*(12+r.rng.IntN(708)) + 5)
	}
	r.remote.mu.Lock()
	r.remote.codes[code] = bpCode{identity: id.name, challenge: aq.Get("code_challenge"), redirect: aq.Get("redirect_uri"),
		resource: aq.Get("resource"), lifetime: lifetime}
	r.remote.mu.Unlock()
	return code
}

// upstreamCallback brings the code to the proxy's upstream callback, which
// exchanges it, and records in the model the token the proxy now holds.
func (r *bpRun) upstreamCallback(a *bpAuthorization, code, state string) (*url.URL, *bpViolation) {
	rec := r.browse(http.MethodGet, a.origin+connect.PathCallback+"?"+url.Values{"code": {code}, "state": {state}}.Encode(), a.sid, nil)
	evs := r.remote.takeEvents()
	if len(evs) != 1 || evs[0].grantType != "authorization_code" || evs[0].problem != "" || evs[0].refused {
		return nil, r.fail(bpFlow, "the upstream callback's requests to the authorization server: %+v", evs)
	}
	if rec.Code != http.StatusFound {
		return nil, r.fail(bpFlow, "upstream callback answered %d %s", rec.Code, rec.Body)
	}
	a.id.present = true
	a.id.hold(&evs[0], r.clock.now())
	a.consented = true
	r.stats.flows++
	return r.location(rec)
}

// clientRedirect checks the proxy's redirect to the MCP client and returns
// its code.
func (r *bpRun) clientRedirect(a *bpAuthorization, loc *url.URL) (string, *bpViolation) {
	cq := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != bpRedirect || cq.Get("code") == "" || cq.Get("iss") != a.origin {
		return "", r.fail(bpFlow, "the redirect to the MCP client: %s", loc)
	}
	return cq.Get("code"), nil
}

// exchangeCode exchanges the code as the MCP client does, and returns the
// tokens and the grant the proxy recorded for them.
func (r *bpRun) exchangeCode(a *bpAuthorization, code string) (tokenResponse, *request.Grant, *bpViolation) {
	rec := do(r.p, bpTokenRequest(a.rt.host, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.client},
		"redirect_uri": {bpRedirect}, "code_verifier": {testVerifier}, "resource": {a.origin + "/mcp"}}))
	var tr tokenResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tr) != nil || tr.AccessToken == "" {
		return tr, nil, r.fail(bpFlow, "code exchange: %d %s", rec.Code, rec.Body)
	}
	at, err := r.p.accessToken(tr.AccessToken)
	if err != nil || at == nil || at.Grant == nil {
		return tr, nil, r.fail(bpFlow, "the access token's record: %+v %v", at, err)
	}
	gr := at.Grant
	if gr.Subject != a.user || gr.Route != a.rt.host || gr.ClientID != a.client || gr.BindingKey == "" {
		return tr, nil, r.fail(bpFlow, "grant %+v for %s/%s/%s", gr, bpShow(a.user), a.rt.host, a.client)
	}
	return tr, gr, nil
}

// recordGrant adds the grant and its MCP client's tokens to the model.
func (r *bpRun) recordGrant(a *bpAuthorization, tr tokenResponse, gr *request.Grant) {
	now, n := r.clock.now(), len(r.grants)
	g := &bpGrant{n: n, route: a.rt, user: a.user, client: a.client, id: a.id, grantID: gr.ID, refresh: tr.RefreshToken,
		access: []bpDownstream{{tr.AccessToken, now.Add(authserver.AccessTokenTTL)}}, refreshExpires: now.Add(authserver.RefreshTokenTTL)}
	r.downstream[tr.AccessToken], r.downstream[tr.RefreshToken] = true, true
	r.grants = append(r.grants, g)
	r.stats.grants++
	r.note("  grant #%d of %s, key %q", n, a.id.name, a.id.key)
}

func bpTokenRequest(host string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "https://"+host+authserver.PathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
