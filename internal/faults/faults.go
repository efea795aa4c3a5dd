// Package faults lets a scenario break a test double on purpose: answer the
// next N requests of an endpoint with a chosen status, drop their
// connection, or delay them. Each double mounts Injector.Wrap around its
// handler and Injector.ControlHandler under /.test/faults.
//
// Rules live in memory; the control API adds, lists and clears them:
//
//	POST   /.test/faults  {"path":"/token","count":2,"status":503}
//	GET    /.test/faults  the active rules and how often each fired
//	DELETE /.test/faults  clear every rule
package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Rule is one fault. A request matches when its path equals Path (or starts
// with it, when Path ends in "*") and, if Method is set, its method is
// Method.
type Rule struct {
	Path   string `json:"path"`
	Method string `json:"method,omitempty"`
	// Count is how many matching requests the rule affects; 0 means every
	// one until the rule is cleared.
	Count int `json:"count,omitempty"`
	// Status answers the request with this status and a JSON error body
	// instead of handling it.
	Status int `json:"status,omitempty"`
	// Drop closes the connection without an answer, as a crashed server
	// would.
	Drop bool `json:"drop,omitempty"`
	// Delay waits this long (a Go duration, such as "2s") before the request
	// is handled or failed. A client that gives up first ends the wait.
	Delay string `json:"delay,omitempty"`
	// Fired counts the requests the rule has affected.
	Fired int `json:"fired"`

	delay time.Duration
}

func (r *Rule) matches(req *http.Request) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, req.Method) {
		return false
	}
	if p, ok := strings.CutSuffix(r.Path, "*"); ok {
		return strings.HasPrefix(req.URL.Path, p)
	}
	return req.URL.Path == r.Path
}

// Validate checks a rule and parses its delay.
func (r *Rule) Validate() error {
	if r.Path == "" || !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("path %q must start with /", r.Path)
	}
	if r.Count < 0 {
		return fmt.Errorf("count %d must not be negative", r.Count)
	}
	if r.Status != 0 && (r.Status < 100 || r.Status > 599) {
		return fmt.Errorf("status %d is not an HTTP status", r.Status)
	}
	if r.Status != 0 && r.Drop {
		return fmt.Errorf("a rule either answers a status or drops the connection, not both")
	}
	if r.Delay != "" {
		d, err := time.ParseDuration(r.Delay)
		if err != nil || d < 0 {
			return fmt.Errorf("delay %q is not a duration such as 2s", r.Delay)
		}
		r.delay = d
	}
	if r.Status == 0 && !r.Drop && r.delay == 0 {
		return fmt.Errorf("the rule does nothing: set status, drop or delay")
	}
	return nil
}

// Injector holds the active rules. The zero value is ready.
type Injector struct {
	mu    sync.Mutex
	rules []*Rule
}

// Add activates a rule.
func (in *Injector) Add(r Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, &r)
	return nil
}

// Clear removes every rule.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
}

// Rules returns copies of the active rules.
func (in *Injector) Rules() []Rule {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Rule, 0, len(in.rules))
	for _, r := range in.rules {
		out = append(out, *r)
	}
	return out
}

// take returns the first rule req matches and consumes one of its uses.
func (in *Injector) take(req *http.Request) (Rule, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, r := range in.rules {
		if !r.matches(req) {
			continue
		}
		r.Fired++
		hit := *r
		if r.Count > 0 && r.Fired >= r.Count {
			in.rules = append(in.rules[:i], in.rules[i+1:]...)
		}
		return hit, true
	}
	return Rule{}, false
}

// Wrap applies the rules to next. Requests under /.test/ are never
// affected, so a scenario can always reach the control API.
func (in *Injector) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/.test/") {
			next.ServeHTTP(w, req)
			return
		}
		r, ok := in.take(req)
		if !ok {
			next.ServeHTTP(w, req)
			return
		}
		if r.delay > 0 {
			t := time.NewTimer(r.delay)
			select {
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
				return
			}
		}
		switch {
		case r.Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			// HTTP/2 cannot hijack: abort the stream instead.
			panic(http.ErrAbortHandler)
		case r.Status != 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(r.Status)
			fmt.Fprintf(w, "{\"error\":\"injected_fault\",\"error_description\":\"the test control API made this request fail with %d\"}\n", r.Status)
		default:
			next.ServeHTTP(w, req)
		}
	})
}

// ControlHandler serves the control API for the rules: GET lists, POST adds
// one rule (JSON), DELETE clears.
func (in *Injector) ControlHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch req.Method {
		case http.MethodGet:
			_ = json.NewEncoder(w).Encode(in.Rules())
		case http.MethodPost:
			var r Rule
			dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "the body is not a fault rule: " + err.Error()})
				return
			}
			if err := in.Add(r); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": err.Error()})
				return
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(in.Rules())
		case http.MethodDelete:
			in.Clear()
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}
