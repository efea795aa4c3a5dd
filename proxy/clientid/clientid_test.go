package clientid

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRedactRemovesUserInformation(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@client.example/app.json": "https://***@client.example/app.json",
		"https://u@client.example/app.json":   "https://***@client.example/app.json",
		"https://client.example/app.json":     "https://client.example/app.json",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	err := CheckURL("https://alice:secret@client.example/app.json")
	if err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "alice") {
		t.Errorf("CheckURL error %v names the user information", err)
	}
}

// countingTransport fails every fetch with a network error.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return nil, errors.New("dial tcp 10.0.0.1:8443: connect: connection refused")
}

// TestFailedFetchIsRememberedAndNotEchoed: a failed fetch is not repeated
// within FailureCache, and its error does not carry the network error.
func TestFailedFetchIsRememberedAndNotEchoed(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &countingTransport{}
	r := &Resolver{HTTP: &http.Client{Transport: tr}, Now: func() time.Time { return now }}
	id := "https://client.example/app.json"
	for range 3 {
		_, err := r.Resolve(context.Background(), id)
		var ce *Error
		if !errors.As(err, &ce) || strings.Contains(err.Error(), "8443") || strings.Contains(err.Error(), "refused") || ce.Cause == nil {
			t.Fatalf("error %v (cause %v)", err, ce)
		}
	}
	if got := tr.n.Load(); got != 1 {
		t.Errorf("%d fetches of a failing document within the failure cache, want 1", got)
	}
	now = now.Add(FailureCache)
	_, _ = r.Resolve(context.Background(), id)
	if got := tr.n.Load(); got != 2 {
		t.Errorf("after the failure cache: %d fetches, want 2", got)
	}
}
