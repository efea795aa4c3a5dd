package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
)

// opAdvance moves the fake clock on a 10-second grid; every expiry is 5
// seconds off it, so no comparison is ever a tie.
func (r *bpRun) opAdvance() *bpViolation {
	switch x := r.rng.IntN(20); {
	case x < 5: // into the refresh window of a token
		var ids []*bpIdentity
		now := r.clock.now()
		for _, id := range r.idList {
			if id.present && !id.expiry.IsZero() && now.Add(id.skew()).Before(id.expiry) {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			id := bpPick(r.rng, ids)
			d := id.expiry.Add(-id.skew() + 5*time.Second).Sub(now)
			r.note("advance %s, into the refresh window of %s", d, id.name)
			r.clock.add(d)
			return nil
		}
		fallthrough
	case x < 7:
		d := time.Duration(180+r.rng.IntN(360)) * 10 * time.Second
		r.note("advance %s", d)
		r.clock.add(d)
	default:
		d := time.Duration(1+r.rng.IntN(30)) * 10 * time.Second
		r.note("advance %s", d)
		r.clock.add(d)
	}
	return nil
}

// opDisconnect removes a binding's token: the user's disconnect on the
// connections page, or for the shared token the operator dropping it.
func (r *bpRun) opDisconnect() *bpViolation {
	ids := r.known(false)
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	r.stats.disconnects++
	if id.user == "" {
		r.note("the operator drops the shared token of %s (held: %v)", id.name, id.present)
		if err := r.p.current().routes[id.route.host].tokens.Drop(context.Background(), id.key); err != nil {
			return r.fail(bpFlow, "%v", err)
		}
		id.present = false
		return nil
	}
	r.note("%s disconnects %s (held: %v)", bpShow(id.user), id.name, id.present)
	rec := r.disconnect(id.route, id.user, id.key)
	want := http.StatusNotFound
	if id.present {
		want = http.StatusOK
	}
	if rec.Code != want {
		if v := r.checkStored(id); v != nil {
			return v
		}
		return r.fail(bpModel, "%s disconnecting %s: %d %s, want %d", bpShow(id.user), id.name, rec.Code, rec.Body, want)
	}
	id.present = false
	return nil
}

func (r *bpRun) disconnect(rt *bpRoute, user, key string) *httptest.ResponseRecorder {
	sid := r.session(rt, user)
	req := httptest.NewRequest(http.MethodPost, "https://"+rt.host+authserver.PathDisconnect,
		strings.NewReader(url.Values{"csrf": {rt.rt.as.FormToken(sid, authserver.PathDisconnect)}, "connection": {authserver.ConnectionID(key)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: login.SessionCookie, Value: sid})
	return do(r.p, req)
}

// opForeignDisconnect: a user tries to disconnect another user's binding
// by its connection id; the proxy must not find it.
func (r *bpRun) opForeignDisconnect() *bpViolation {
	var ids []*bpIdentity
	for _, id := range r.known(true) {
		if id.user != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	other := bpPick(r.rng, r.users)
	if other == id.user {
		return nil
	}
	r.note("%s tries to disconnect %s", bpShow(other), id.name)
	rec := r.disconnect(id.route, other, id.key)
	if rec.Code != http.StatusNotFound {
		return r.fail(bpBinding, "%s disconnecting %s's binding %s: %d %s, want 404", bpShow(other), bpShow(id.user), id.name, rec.Code, rec.Body)
	}
	ut, err := r.p.upstreamToken(id.route.host, id.key)
	if err != nil || ut == nil {
		return r.fail(bpBinding, "%s's token is gone after %s's disconnect attempt (%v)", id.name, bpShow(other), err)
	}
	r.stats.foreignDisconnects++
	return nil
}

func (r *bpRun) opRefuseRefresh() *bpViolation {
	ids := r.known(true)
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	r.note("the authorization server will refuse the next refresh of %s", id.name)
	r.remote.mu.Lock()
	r.remote.refuse[id.refresh] = true
	r.remote.mu.Unlock()
	id.refuseArmed = true
	return nil
}

func (r *bpRun) opRemoteRejects() *bpViolation {
	ids := r.known(true)
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	r.note("the remote server stops accepting %s of %s", id.access, id.name)
	r.remote.mu.Lock()
	r.remote.reject[id.access] = true
	r.remote.mu.Unlock()
	id.rejectArmed = true
	return nil
}

// opClientRefresh: an MCP client refreshes its own token; the new one
// keeps the grant and its binding.
func (r *bpRun) opClientRefresh() *bpViolation { return r.clientRefresh(bpPick(r.rng, r.grants)) }

func (r *bpRun) clientRefresh(g *bpGrant) *bpViolation {
	now := r.clock.now()
	r.note("grant #%d's client refreshes its token", g.n)
	rec := do(r.p, bpTokenRequest(g.route.host, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.refresh}, "client_id": {g.client}}))
	if !now.Before(g.refreshExpires) {
		if rec.Code != http.StatusBadRequest {
			return r.fail(bpModel, "an expired refresh token of grant #%d: %d %s", g.n, rec.Code, rec.Body)
		}
		return nil
	}
	var tr tokenResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tr) != nil || tr.AccessToken == "" {
		return r.fail(bpFlow, "refresh of grant #%d: %d %s", g.n, rec.Code, rec.Body)
	}
	at, err := r.p.accessToken(tr.AccessToken)
	if err != nil || at == nil || at.Grant == nil {
		return r.fail(bpFlow, "the refreshed access token's record: %+v %v", at, err)
	}
	if at.Grant.ID != g.grantID || at.Grant.BindingKey != g.id.key || at.Grant.Subject != g.user {
		return r.fail(bpBinding, "grant #%d (%s, key %q) refreshed into grant %s of %s with key %q",
			g.n, g.id.name, g.id.key, at.Grant.ID, bpShow(at.Grant.Subject), at.Grant.BindingKey)
	}
	g.access = append(g.access, bpDownstream{tr.AccessToken, now.Add(authserver.AccessTokenTTL)})
	g.refresh, g.refreshExpires = tr.RefreshToken, now.Add(authserver.RefreshTokenTTL)
	r.downstream[tr.AccessToken], r.downstream[tr.RefreshToken] = true, true
	r.stats.clientRefreshes++
	return nil
}

// opListConnections: a user's connections page lists exactly the
// bindings of that user on that route that the proxy holds.
func (r *bpRun) opListConnections() *bpViolation {
	rt, user := bpPick(r.rng, r.routes), bpPick(r.rng, r.users)
	r.note("%s lists connections on %s", bpShow(user), rt.host)
	sid := r.session(rt, user)
	req := httptest.NewRequest(http.MethodGet, "https://"+rt.host+authserver.PathConnections, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: login.SessionCookie, Value: sid})
	rec := do(r.p, req)
	var body struct {
		Connections []authserver.Connection `json:"connections"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		return r.fail(bpFlow, "connections: %d %s", rec.Code, rec.Body)
	}
	got, want := []string{}, []string{}
	for _, c := range body.Connections {
		got = append(got, c.ID)
	}
	for _, id := range r.known(true) {
		if id.route == rt && id.user == user {
			want = append(want, authserver.ConnectionID(id.key))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return r.fail(bpBinding, "%s's connections on %s are %v, want %v", bpShow(user), rt.host, got, want)
	}
	r.stats.listings++
	return nil
}
