package clients

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// exchangeAdapter stands, on loopback, in front of the token endpoint of
// auth/enterprise-managed-authorization's identity provider, for the
// harness only. That identity provider accepts one subject token: the
// idp_id_token the scenario hands to the client. The proxy exchanges the
// ID token of its own signed-in user (alice, signed in at the stack's
// identity provider), which the suite's cannot know. So the adapter
// replaces subject_token in each exchange with idp_id_token and forwards
// the request otherwise as the proxy sent it (every other parameter, the
// headers, the client authentication), and the answer as the identity
// provider sent it: the suite still judges everything else the proxy
// sends.
type exchangeAdapter struct {
	URL string
	srv *http.Server
}

func (a *exchangeAdapter) Close() error { return a.srv.Close() }

// maxExchangeBody bounds a token exchange request's form.
const maxExchangeBody = 64 << 10

// startExchangeAdapter serves the adapter for the identity provider's
// token endpoint target, substituting subjectToken.
func startExchangeAdapter(target, subjectToken string) (*exchangeAdapter, error) {
	if _, err := url.Parse(target); err != nil || target == "" || subjectToken == "" {
		return nil, fmt.Errorf("the scenario's context has no idp_token_endpoint and idp_id_token to adapt (%q)", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxExchangeBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "the exchange adapter reads only a form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if form.Has("subject_token") {
			form.Set("subject_token", subjectToken)
			body = []byte(form.Encode())
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.ContentLength = int64(len(body))
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	a := &exchangeAdapter{URL: "http://" + ln.Addr().String() + "/token", srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go a.srv.Serve(ln)
	return a, nil
}
