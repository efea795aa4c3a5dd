package proxy

import (
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
