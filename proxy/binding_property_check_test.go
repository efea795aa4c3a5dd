package proxy

import (
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// The checks of the binding property: whose each token is that the proxy
// stored, injected or refreshed, and which key each grant carries.

// checkGrantKey learns a binding's key from its first grant, which must be
// no other binding's key, and requires every later grant of the binding to
// carry the same key.
func (r *bpRun) checkGrantKey(id *bpIdentity, gr *request.Grant) *bpViolation {
	if id.key == "" {
		if other := r.byKey[gr.BindingKey]; other != nil {
			return r.fail(bpBinding, "bindings %s and %s have the same key %q", other.name, id.name, gr.BindingKey)
		}
		id.key = gr.BindingKey
		r.byKey[id.key] = id
	} else if id.key != gr.BindingKey {
		return r.fail(bpBinding, "a grant of binding %s has key %q; earlier grants of it have %q", id.name, gr.BindingKey, id.key)
	}
	return nil
}

// checkConsentStored requires the token a consent just gave to be stored
// under the binding's key, as user's, with the authorization server's
// expiry.
func (r *bpRun) checkConsentStored(id *bpIdentity, user string) *bpViolation {
	ut, err := r.p.upstreamToken(id.route.host, id.key)
	switch {
	case err != nil || ut == nil:
		return r.fail(bpModel, "no upstream token under %s's key after the consent: %v", id.name, err)
	case ut.AccessToken != id.access || ut.Key != id.key || ut.Subject != user:
		return r.fail(bpBinding, "the token stored under %s's key is %s of %s (Key %q)", id.name, ut.AccessToken, bpShow(ut.Subject), ut.Key)
	case id.expiry.IsZero() != ut.Expiry.IsZero() || ut.Expiry.Sub(id.expiry).Abs() > 2*time.Second:
		return r.fail(bpFlow, "the stored expiry %s differs from the authorization server's %s", ut.Expiry, id.expiry)
	}
	return nil
}

// checkInjected is the property: every token the remote server received
// (hits, per request) belongs to the binding of the request's grant.
func (r *bpRun) checkInjected(reqs []*bpReq, hits [][]bpHit) *bpViolation {
	for i, q := range reqs {
		for _, h := range hits[i] {
			if v := r.checkHit(q, h); v != nil {
				return v
			}
		}
	}
	return nil
}

func (r *bpRun) checkHit(q *bpReq, h bpHit) *bpViolation {
	if len(h.auth) != 1 || !strings.HasPrefix(h.auth[0], "Bearer ") {
		return r.fail(bpBinding, "request %s of grant #%d reached the remote server with Authorization %q", q.tag, q.g.n, h.auth)
	}
	tok := strings.TrimPrefix(h.auth[0], "Bearer ")
	if r.downstream[tok] {
		return r.fail(bpBinding, "request %s of grant #%d passed the MCP client's own token to the remote server", q.tag, q.g.n)
	}
	info, ok := r.remote.lookup(tok)
	if !ok || info.refresh {
		return r.fail(bpBinding, "request %s of grant #%d carried %q, which the authorization server never issued as an access token", q.tag, q.g.n, tok)
	}
	if info.identity != q.g.id.name {
		return r.fail(bpBinding, "request %s of grant #%d (user %s, client %s, binding %s, key %q) carried %s, the remote token of %s",
			q.tag, q.g.n, bpShow(q.g.user), q.g.client, q.g.id.name, q.g.id.key, tok, info.identity)
	}
	r.stats.injected++
	return nil
}

// checkRefreshes requires every request the authorization server received
// while serving the requests (desc) to be a well-formed refresh, with a
// refresh token it issued, of a binding they used with a valid client
// token (active): no refresh used another binding's refresh token. It
// returns the refreshes by binding.
func (r *bpRun) checkRefreshes(events []bpASEvent, active map[*bpIdentity]bool, desc []string) (map[*bpIdentity][]bpASEvent, *bpViolation) {
	byID := map[*bpIdentity][]bpASEvent{}
	for _, ev := range events {
		id := r.ids[ev.identity]
		switch {
		case ev.grantType != "refresh_token" || ev.problem != "":
			return nil, r.fail(bpModel, "unexpected request to the authorization server: %+v", ev)
		case id == nil:
			return nil, r.fail(bpBinding, "the proxy presented refresh token %q, which the authorization server never issued", ev.presented)
		}
		if !active[id] {
			return nil, r.fail(bpBinding, "the proxy refreshed %s's token while serving %s", ev.identity, strings.Join(desc, ", "))
		}
		byID[id] = append(byID[id], ev)
	}
	return byID, nil
}

// checkStored reports a token stored under id's key that the authorization
// server issued for another binding.
func (r *bpRun) checkStored(id *bpIdentity) *bpViolation {
	ut, err := r.p.upstreamToken(id.route.host, id.key)
	if err != nil || ut == nil {
		return nil
	}
	if info, ok := r.remote.lookup(ut.AccessToken); !ok || info.identity != id.name || ut.Key != id.key {
		return r.fail(bpBinding, "the token stored under the key of %s is %s, the remote token of %q (its Key field %q)", id.name, ut.AccessToken, info.identity, ut.Key)
	}
	return nil
}
