package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// bpReq is one request of an MCP client to the remote MCP server, through
// the proxy.
type bpReq struct {
	g     *bpGrant
	tok   bpDownstream
	tag   string
	valid bool
	rec   *httptest.ResponseRecorder
}

// bpOutcome is the model's prediction for one binding's requests in an
// operation.
type bpOutcome struct {
	present  bool // the proxy holds a token for the binding
	refresh  bool // the token expired: the request waits for its refresh
	behind   bool // the token is within its refresh window: it is used and refreshed in the background
	refused  bool // and the authorization server refuses the refresh
	rejected bool // the remote server refuses the (unrefreshed) token
	token    string
	renewed  *bpASEvent // the background refresh
}

// opRequests sends n requests at once (n > 1: in parallel) with the MCP
// clients' tokens, and checks every token the remote server received.
func (r *bpRun) opRequests(n int) *bpViolation {
	now := r.clock.now()
	reqs, desc, v := r.chooseRequests(n, now)
	if v != nil {
		return v
	}
	hits, events := r.send(reqs)
	if v := r.checkInjected(reqs, hits); v != nil {
		return v
	}
	active := bpActive(reqs)
	byID, v := r.checkRefreshes(events, active, desc)
	if v != nil {
		return v
	}
	out, v := r.predict(reqs, active, byID, now)
	if v != nil {
		return v
	}
	reached, v := r.checkAnswers(reqs, hits, out)
	if v != nil {
		return v
	}
	return r.settle(out, byID, reached)
}

// chooseRequests picks n requests and notes them; it returns their
// descriptions for failure messages.
func (r *bpRun) chooseRequests(n int, now time.Time) ([]*bpReq, []string, *bpViolation) {
	var live []*bpGrant
	for _, g := range r.grants {
		if g.id.present {
			live = append(live, g)
		}
	}
	reqs := make([]*bpReq, n)
	var desc []string
	for i := range reqs {
		q, v := r.chooseRequest(live, i, now)
		if v != nil {
			return nil, nil, v
		}
		reqs[i] = q
		desc = append(desc, fmt.Sprintf("#%d(%s, client token valid: %v)", q.g.n, q.g.id.name, q.valid))
	}
	if n == 1 {
		r.note("request %s", desc[0])
	} else {
		r.note("burst of %d: %s", n, strings.Join(desc, ", "))
		r.stats.bursts++
		r.stats.burstRequests += n
	}
	return reqs, desc, nil
}

// chooseRequest picks the i-th request of the operation: mostly of a grant
// whose binding's token the model holds (live), with the MCP client's
// newest token, sometimes an older one.
func (r *bpRun) chooseRequest(live []*bpGrant, i int, now time.Time) (*bpReq, *bpViolation) {
	g := bpPick(r.rng, r.grants)
	if len(live) > 0 && r.rng.IntN(10) < 7 {
		g = bpPick(r.rng, live)
	}
	if !now.Before(g.access[len(g.access)-1].expires) && r.rng.IntN(5) != 0 {
		// The MCP client notices its token expired and refreshes it.
		if v := r.clientRefresh(g); v != nil {
			return nil, v
		}
	}
	tok := g.access[len(g.access)-1]
	if len(g.access) > 1 && r.rng.IntN(5) == 0 {
		tok = bpPick(r.rng, g.access)
	}
	return &bpReq{g: g, tok: tok, tag: fmt.Sprintf("%d.%d", r.op, i), valid: now.Before(tok.expires)}, nil
}

// send sends the requests, in parallel when there are several, and lets
// the background refreshes they started end; it returns what the remote
// MCP server received for each request, and the requests the
// authorization server received.
func (r *bpRun) send(reqs []*bpReq) ([][]bpHit, []bpASEvent) {
	if len(reqs) == 1 {
		r.sendOne(reqs[0])
	} else {
		var wg sync.WaitGroup
		for _, q := range reqs {
			wg.Go(func() { r.sendOne(q) })
		}
		wg.Wait()
	}
	for _, rt := range r.p.current().routes {
		rt.tokens.Settle()
	}
	hits := make([][]bpHit, len(reqs))
	for i, q := range reqs {
		hits[i] = r.remote.takeHits(q.tag)
	}
	return hits, r.remote.takeEvents()
}

func (r *bpRun) sendOne(q *bpReq) {
	req := httptest.NewRequest(http.MethodPost, "https://"+q.g.route.host+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+q.tok.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Op", q.tag)
	q.rec = do(r.p, req)
}

// bpActive returns the bindings of the requests whose client token is
// valid: the only ones whose token the proxy may use or refresh.
func bpActive(reqs []*bpReq) map[*bpIdentity]bool {
	active := map[*bpIdentity]bool{}
	for _, q := range reqs {
		if q.valid {
			active[q.g.id] = true
		}
	}
	return active
}

// The model: which requests succeed, with which token, and what the proxy
// holds afterwards.

// predict returns the model's outcome for each binding the requests used
// with a valid client token, given the refreshes the proxy made (byID).
func (r *bpRun) predict(reqs []*bpReq, active map[*bpIdentity]bool, byID map[*bpIdentity][]bpASEvent, now time.Time) (map[*bpIdentity]*bpOutcome, *bpViolation) {
	out := map[*bpIdentity]*bpOutcome{}
	for _, q := range reqs {
		id := q.g.id
		if !active[id] || out[id] != nil {
			continue
		}
		o, v := r.predictBinding(id, byID[id], now)
		if v != nil {
			return nil, v
		}
		out[id] = o
	}
	return out, nil
}

// predictBinding is the model's outcome for id's requests, after checking
// id's refreshes evs.
func (r *bpRun) predictBinding(id *bpIdentity, evs []bpASEvent, now time.Time) (*bpOutcome, *bpViolation) {
	o := &bpOutcome{present: id.present, token: id.access}
	due := id.present && !id.expiry.IsZero() && !now.Add(id.skew()).Before(id.expiry)
	o.refresh = due && !now.Before(id.expiry)
	o.behind = due && !o.refresh
	if v := r.checkRefreshOf(id, due, o.behind, evs, now); v != nil {
		return nil, v
	}
	switch {
	case o.refresh:
		if o.refused = evs[0].refused; !o.refused {
			o.token = evs[0].access
		}
	case o.behind && len(evs) == 1:
		o.renewed = &evs[0]
	}
	o.rejected = id.present && !o.refresh && id.rejectArmed
	return o, nil
}

// checkRefreshOf requires the proxy to have refreshed id's token (evs)
// only when it is due, then once, with id's refresh token, refused
// exactly when the test armed the refusal; and counts the refresh.
func (r *bpRun) checkRefreshOf(id *bpIdentity, due, behind bool, evs []bpASEvent, now time.Time) *bpViolation {
	switch {
	case !due && len(evs) > 0:
		return r.fail(bpModel, "the proxy refreshed %s's token (expiry %s) at %s", id.name, id.expiry, now)
	case behind && id.rejectArmed && len(evs) == 0:
		// The remote server's 401 dropped the token before the
		// background refresh read it.
	case due && len(evs) != 1:
		return r.fail(bpModel, "%s's token expires at %s, now %s: %d refreshes, want 1", id.name, id.expiry, now, len(evs))
	case due && evs[0].presented != id.refresh:
		return r.fail(bpModel, "the refresh of %s presented %s, want %s", id.name, evs[0].presented, id.refresh)
	case due && evs[0].refused != id.refuseArmed:
		return r.fail(bpModel, "the refresh of %s: refused %v, want %v", id.name, evs[0].refused, id.refuseArmed)
	}
	if due && len(evs) == 1 {
		r.stats.refreshes++
		if evs[0].refused {
			r.stats.refusedRefreshes++
		}
	}
	return nil
}

// checkAnswers checks every request's answer against the model's outcome
// for its binding (out); it returns how often the requests of each
// binding whose token the remote server rejects reached it.
func (r *bpRun) checkAnswers(reqs []*bpReq, hits [][]bpHit, out map[*bpIdentity]*bpOutcome) (map[*bpIdentity]int, *bpViolation) {
	reached := map[*bpIdentity]int{}
	for i, q := range reqs {
		o := out[q.g.id]
		if o == nil {
			o = &bpOutcome{} // no request of the binding had a valid client token
		}
		if v := r.checkAnswer(q, o, hits[i], len(reqs), reached); v != nil {
			return nil, v
		}
	}
	return reached, nil
}

// checkAnswer checks q's answer, and how often and with which token it
// reached the remote server (hs), against o; n is the number of requests
// sent at once.
func (r *bpRun) checkAnswer(q *bpReq, o *bpOutcome, hs []bpHit, n int, reached map[*bpIdentity]int) *bpViolation {
	rec := q.rec
	r.stats.requests++
	ok := rec.Code == http.StatusOK
	wantOK := bpWantOK(q, o, n, ok)
	if ok != wantOK || (!ok && (rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`))) {
		return r.fail(bpModel, "request %s of grant #%d (%s): %d %s; the model expected success %v (%+v)", q.tag, q.g.n, q.g.id.name, rec.Code, rec.Body, wantOK, o)
	}
	if !ok {
		r.stats.challenges++
	}
	wantHits := 0
	switch {
	case wantOK:
		wantHits = 1
	case q.valid && o.rejected:
		wantHits = len(hs) // reached the remote server, or found the token dropped by a parallel request
		if n == 1 {
			wantHits = 1
		}
		reached[q.g.id] += len(hs)
	}
	if len(hs) != wantHits || len(hs) > 1 {
		return r.fail(bpModel, "request %s of grant #%d (%s) reached the remote server %d times, want %d (%+v)", q.tag, q.g.n, q.g.id.name, len(hs), wantHits, o)
	}
	return r.checkCarried(q, o, hs, n)
}

// bpWantOK is whether the model expects q to succeed (ok: whether it did).
func bpWantOK(q *bpReq, o *bpOutcome, n int, ok bool) bool {
	wantOK := q.valid && o.present && !o.refused && !o.rejected
	if wantOK && !ok && n > 1 && o.renewed != nil && o.renewed.refused {
		wantOK = false // a parallel request's background refresh was refused first and dropped the token
	}
	return wantOK
}

// checkCarried requires a request that reached the remote server to carry
// the token the model predicts.
func (r *bpRun) checkCarried(q *bpReq, o *bpOutcome, hs []bpHit, n int) *bpViolation {
	if len(hs) != 1 {
		return nil
	}
	if n > 1 && o.renewed != nil && hs[0].auth[0] == "Bearer "+o.renewed.access {
		return nil // a parallel request's background refresh ended first
	}
	if hs[0].auth[0] != "Bearer "+o.token {
		return r.fail(bpModel, "request %s of grant #%d (%s) carried %s, want %s", q.tag, q.g.n, q.g.id.name, hs[0].auth[0], o.token)
	}
	return nil
}

// settle brings the model up to what the proxy holds after the requests.
func (r *bpRun) settle(out map[*bpIdentity]*bpOutcome, byID map[*bpIdentity][]bpASEvent, reached map[*bpIdentity]int) *bpViolation {
	for id, o := range out {
		if v := r.settleBinding(id, o, byID[id], reached[id]); v != nil {
			return v
		}
	}
	return nil
}

// settleBinding updates id after requests whose outcome was o, given its
// refreshes evs and how often its rejected requests reached the remote
// server.
func (r *bpRun) settleBinding(id *bpIdentity, o *bpOutcome, evs []bpASEvent, reached int) *bpViolation {
	switch {
	case o.behind && o.rejected:
		return r.settleRace(id, o, reached)
	case o.behind && o.renewed != nil && o.renewed.refused:
		id.present = false
	case o.behind && o.renewed != nil:
		id.hold(o.renewed, r.clock.now())
	case o.rejected:
		if reached == 0 {
			return r.fail(bpModel, "no request of %s reached the remote server", id.name)
		}
		r.stats.rejections++
		id.present = false
	case o.refused:
		id.present = false
	case o.refresh:
		id.hold(&evs[0], r.clock.now())
	}
	return nil
}

// settleRace updates id after the remote server's 401 and the background
// refresh raced: the proxy holds the refreshed token, or none.
func (r *bpRun) settleRace(id *bpIdentity, o *bpOutcome, reached int) *bpViolation {
	ut, err := r.p.upstreamToken(id.route.host, id.key)
	if err != nil {
		return r.fail(bpFlow, "the token of %s: %v", id.name, err)
	}
	if reached == 0 {
		return r.fail(bpModel, "no request of %s reached the remote server", id.name)
	}
	switch {
	case ut == nil:
		id.present = false
	case o.renewed == nil || o.renewed.refused || ut.AccessToken != o.renewed.access:
		return r.fail(bpModel, "after a 401 and a background refresh %s holds %s, want none or the refreshed token", id.name, ut.AccessToken)
	default:
		id.hold(o.renewed, r.clock.now())
	}
	r.stats.rejections++
	return nil
}
