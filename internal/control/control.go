// Package control is the observation side of the test doubles: a recorder of
// what a double received, the guarded HTTP endpoints that expose it under
// /.test/, and the client the harness reads them with.
//
// Secrets never reach the recorder in clear: tokens, codes, verifiers and
// passwords are replaced by their fingerprint (see [Fingerprint]) before an
// event is stored, so a scenario can still prove which token arrived where.
package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// PathPrefix is where every double serves its control API.
const PathPrefix = "/.test/"

// SecretHeader carries the shared secret that guards the control API, as
// "Authorization: Bearer <secret>".
const SecretHeader = "Authorization"

// Fingerprint returns a short, stable, non-reversible name for a secret:
// "fp:" and the first 16 hex digits of its SHA-256. The empty string stays
// empty.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return "fp:" + hex.EncodeToString(sum[:8])
}

// Event is one thing a double received or did.
type Event struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Kind names the endpoint or action: "authorize", "token", "cimd_fetch",
	// "mcp", ... Each double documents its kinds.
	Kind   string `json:"kind"`
	Method string `json:"method,omitempty"`
	// Host is the Host the request named, Path its path.
	Host string `json:"host,omitempty"`
	Path string `json:"path,omitempty"`
	// Params are form or query parameters with secrets fingerprinted.
	Params map[string]string `json:"params,omitempty"`
	// Authorization is the fingerprint of the bearer token that came with the
	// request, if any.
	Authorization string `json:"authorization,omitempty"`
	// Status is the HTTP status the double answered.
	Status int `json:"status,omitempty"`
	// Detail is free text: an error description, the subject a token named,
	// the MCP method, and so on.
	Detail map[string]string `json:"detail,omitempty"`
}

// Recorder keeps events in memory, in order. The zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	seq    int64
	events []Event
	now    func() time.Time
}

// Record stores e, stamping its sequence number and time.
func (r *Recorder) Record(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	e.Seq = r.seq
	if e.Time.IsZero() {
		if r.now != nil {
			e.Time = r.now()
		} else {
			e.Time = time.Now()
		}
	}
	r.events = append(r.events, e)
}

// Events returns a copy of all events so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Count returns how many events of kind were recorded.
func (r *Recorder) Count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Reset forgets all events; sequence numbers keep growing.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// Guard wraps a control handler so that it answers only requests carrying
// the shared secret. An empty secret disables the control API entirely: it
// answers 404, as if it did not exist.
func Guard(secret string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret == "" {
			http.NotFound(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get(SecretHeader), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error":"unauthorized","error_description":"the control API needs Authorization: Bearer <control secret>"}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// EventsHandler serves GET (the events, optionally ?kind=) and DELETE (reset)
// for rec.
func EventsHandler(rec *Recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			evs := rec.Events()
			if k := r.URL.Query().Get("kind"); k != "" {
				filtered := evs[:0:0]
				for _, e := range evs {
					if e.Kind == k {
						filtered = append(filtered, e)
					}
				}
				evs = filtered
			}
			if evs == nil {
				evs = []Event{}
			}
			WriteJSON(w, http.StatusOK, evs)
		case http.MethodDelete:
			rec.Reset()
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Client reads a double's control API.
type Client struct {
	// BaseURL is the double's origin, such as https://auth.provider.com.
	BaseURL string
	// Secret is the shared control secret.
	Secret string
	// HTTP is the client that reaches the double.
	HTTP *http.Client
}

// Events fetches the recorded events, all of them when kind is empty.
func (c *Client) Events(ctx context.Context, kind string) ([]Event, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + PathPrefix + "events"
	if kind != "" {
		u += "?kind=" + kind
	}
	var evs []Event
	if err := c.Do(ctx, http.MethodGet, u, nil, &evs); err != nil {
		return nil, err
	}
	return evs, nil
}

// Do sends a control request with the secret and decodes a JSON answer into
// out when out is not nil.
func (c *Client) Do(ctx context.Context, method, url string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set(SecretHeader, "Bearer "+c.Secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("control %s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
