package clientid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeReasonsSpeakJSON: a document that does not decode is refused
// in the terms of JSON, never with the Go types it is decoded into.
func TestDecodeReasonsSpeakJSON(t *testing.T) {
	for body, want := range map[string]string{
		`"a string"`:                    "its metadata document is not a JSON object",
		`{"redirect_uris":"https://x"}`: "its metadata document's redirect_uris is a string, not an array of strings",
		`{"client_name":["x"]}`:         "its metadata document's client_name is an array, not a string",
		`{"client_id":`:                 "its metadata document is not valid JSON",
	} {
		_, err := checkDocument("https://client.example/doc.json", []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "struct") || strings.Contains(err.Error(), "Go ") {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// TestRedirectLocationIsRedacted: the Location of a document's redirect,
// which its server chose, is shown without user information and bounded.
func TestRedirectLocationIsRedacted(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://user:secret@elsewhere.example/"+strings.Repeat("a", 300), http.StatusFound)
	}))
	defer ts.Close()
	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	_, err := (&Resolver{HTTP: hc}).Resolve(context.Background(), ts.URL+"/doc.json")
	if err == nil || !strings.Contains(err.Error(), "a redirect to https://***@elsewhere.example/") ||
		strings.Contains(err.Error(), "secret") || len(err.Error()) > 400 {
		t.Errorf("a redirecting document: %v", err)
	}
}
