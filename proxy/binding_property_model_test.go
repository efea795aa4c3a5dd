package proxy

import (
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
)

// The model: what the test believes the proxy holds, per binding and per
// MCP client authorization, and whose each token is.

type bpRoute struct {
	host     string
	binding  config.BindingMode
	rt       *route
	sessions map[string]string // user → browser session id
}

// bpIdentity is one binding as the test sees it, and what the model
// believes the proxy holds for it.
type bpIdentity struct {
	name  string
	route *bpRoute
	user  string // "" under service_account
	key   string // the proxy's binding key, learned from the first grant

	present         bool
	access, refresh string
	expiry          time.Time
	issued          time.Time // when the current token was issued, on the fake clock
	refuseArmed     bool      // the authorization server refuses the next refresh of refresh
	rejectArmed     bool      // the remote MCP server refuses access
}

// bpDownstream is a token the proxy issued to an MCP client.
type bpDownstream struct {
	token   string
	expires time.Time
}

// bpGrant is one MCP client authorization and the tokens its client holds.
type bpGrant struct {
	n              int
	route          *bpRoute
	user, client   string
	id             *bpIdentity
	grantID        string
	access         []bpDownstream
	refresh        string
	refreshExpires time.Time
}

// identity returns the binding identity name, creating it.
func (r *bpRun) identity(name string, rt *bpRoute, user string) *bpIdentity {
	if id := r.ids[name]; id != nil {
		return id
	}
	id := &bpIdentity{name: name, route: rt, user: user}
	r.ids[name] = id
	r.idList = append(r.idList, id)
	return id
}

// known returns the bindings whose key a grant taught the test, in
// creation order; with present, only those the model believes the proxy
// holds a token for.
func (r *bpRun) known(present bool) []*bpIdentity {
	var out []*bpIdentity
	for _, id := range r.idList {
		if id.key != "" && (!present || id.present) {
			out = append(out, id)
		}
	}
	return out
}

// skew is the model's refresh window of the identity's token: a quarter
// of its life, at most a minute (docs/advanced.md).
func (id *bpIdentity) skew() time.Duration {
	return tokens.RefreshSkew(id.expiry.Sub(id.issued))
}

// hold records in the model that the proxy holds the token the
// authorization server answered ev with, issued now; what the test armed
// against the token it replaces does not apply to it.
func (id *bpIdentity) hold(ev *bpASEvent, now time.Time) {
	id.access, id.refresh, id.expiry, id.issued = ev.access, ev.refresh, ev.expiry, now
	id.refuseArmed, id.rejectArmed = false, false
}
