package connect

import (
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
)

// callback is where the remote authorization server sends the browser
// back. It checks state (single use, unexpired), that the same user is
// signed in, and iss (RFC 9207) before it redeems the code; it stores the
// token and hands the downstream authorization back to the proxy's
// authorization server, once.
func (f *Flow) callback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	stateInvalid := apierror.New(apierror.CodeStateInvalid,
		"This answer from the remote authorization server has an unknown, already used or expired state, so the proxy did not use it. Start again from your MCP client.")
	// The state is read first and consumed only once the answer is known to
	// belong to this browser's user: a link opened by someone else must not
	// destroy the authorization of the user it belongs to.
	pend, err := f.lookup(ctx, q.Get("state"))
	if err != nil {
		return apierror.Storage(err)
	}
	if pend == nil {
		return stateInvalid
	}
	sess, err := f.Sessions.Current(r)
	if err != nil {
		return apierror.Storage(err)
	}
	if sess == nil || sess.Subject != pend.Subject {
		return apierror.New(apierror.CodeWrongUser,
			"This answer from the remote authorization server belongs to an authorization started by another user or in another browser, so the proxy did not use it. Start again from your MCP client.")
	}
	if !f.take(ctx, pend) {
		return stateInvalid
	}
	ut, err := f.redeem(ctx, pend, q)
	if err != nil {
		return err
	}
	if err := f.Tokens.Acquired(ctx, ut, ""); err != nil {
		return err
	}
	f.Metrics.Registration(metrics.RegistrationMethod(pend.Grant.Method.Metric()))
	return f.Done.Resume(w, r, Result{RequestID: pend.RequestID, Subject: pend.Subject, BindingKey: pend.BindingKey})
}
