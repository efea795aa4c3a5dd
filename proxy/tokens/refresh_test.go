package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/credentials"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// clock is the tests' fake time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// tokenEndpoint is a fake remote token endpoint. It answers refresh
// requests with a new token of an hour, or with status when set; with
// hold set, each request waits until the test closes hold.
type tokenEndpoint struct {
	srv      *httptest.Server
	calls    atomic.Int32
	status   atomic.Int32
	received chan struct{} // one value per request, when it arrives
	hold     chan struct{}
	release  func() // closes hold, once
}

// holdAnswers makes each request wait until release is called (at the
// latest when the test ends, so the server can close).
func (e *tokenEndpoint) holdAnswers(t *testing.T) {
	e.hold = make(chan struct{})
	var once sync.Once
	e.release = func() { once.Do(func() { close(e.hold) }) }
	t.Cleanup(e.release)
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{received: make(chan struct{}, 100)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") == "" {
			t.Errorf("the token endpoint got %v %v, want a refresh", r.PostForm, err)
		}
		n := e.calls.Add(1)
		e.received <- struct{}{}
		if e.hold != nil {
			<-e.hold
		}
		w.Header().Set("Content-Type", "application/json")
		if s := int(e.status.Load()); s != 0 {
			w.WriteHeader(s)
			if s < 500 {
				fmt.Fprint(w, `{"error":"invalid_grant"}`)
			}
			return
		}
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","refresh_token":"rt-%d","expires_in":3600}`, n, n)
	}))
	t.Cleanup(e.srv.Close) // after holdAnswers' release: cleanups run last first
	return e
}

// logBuffer collects a Source's JSON log lines.
type logBuffer struct{ syncbuf.Buffer }

// events returns the logged lines of event.
func (l *logBuffer) events(event string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// t0 is when the test token was issued; it lives an hour, so its refresh
// window (a quarter, at most 5 minutes) opens at t0+55m.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const key = "per_user\x00mcp.example.com\x00alice\x00https://remote.example.com/mcp"

type fixture struct {
	src   *Source
	clock *clock
	as    *tokenEndpoint
	log   *logBuffer
	back  store.Backend
}

func loadRoute(t *testing.T) *config.Route {
	t.Helper()
	return configtest.Route(t, "https://remote.example.com/mcp", "{}")
}

// newFixture is a Source holding alice's token, issued at t0, with the
// clock at now.
func newFixture(t *testing.T, now time.Time) *fixture {
	t.Helper()
	c := &clock{t: now}
	f := &fixture{clock: c, as: newTokenEndpoint(t), log: &logBuffer{}, back: store.NewMemoryClock(c.now)}
	f.src = f.source(t, f.back)
	tok := &upstream.Token{Key: key, AccessToken: "at-0", RefreshToken: "rt-0", TokenType: "Bearer", Subject: "alice",
		Acquired: t0, Issued: t0, Expiry: t0.Add(time.Hour), Grant: upstream.Grant{TokenURL: f.as.srv.URL + "/token", ClientID: "proxy"}}
	if err := f.src.Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return f
}

// source is another Source on the same route, log, clock and endpoint,
// over back.
func (f *fixture) source(t *testing.T, back store.Backend) *Source {
	rc := loadRoute(t)
	s := &Source{
		Route: rc, Records: store.Records[upstream.Token]{B: back, NS: NSUpstream}, Locks: back,
		HTTP: f.as.srv.Client(), Now: f.clock.now, Metrics: metrics.New(),
		Log:         slog.New(slog.NewJSONHandler(f.log, nil)).With(slog.String("route", "mcp.example.com")),
		Credentials: &credentials.Store{Route: rc, Records: store.Records[credentials.Registration]{B: back, NS: credentials.NSRegistrations}},
		Jitter:      func() float64 { return 0 },
	}
	t.Cleanup(s.Settle)
	return s
}

func (f *fixture) token(t *testing.T) *upstream.Token {
	t.Helper()
	tok, err := f.src.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenWithin calls Token and fails the test if it has not returned
// within a generous deadline: a request that waits for the authorization
// server never returns while the endpoint holds its answer.
func tokenWithin(t *testing.T, s *Source) (*upstream.Token, error) {
	t.Helper()
	type result struct {
		tok *upstream.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := s.Token(context.Background(), key)
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		return r.tok, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Token waited for the authorization server, though the cached token is still valid")
		return nil, nil
	}
}

// A request inside the refresh window is served with the cached token at
// once; the refresh runs beside it.
func TestWindowServesAtOnceAndRefreshesBehind(t *testing.T) {
	f := newFixture(t, t0.Add(56*time.Minute))
	f.as.holdAnswers(t)
	tok, err := tokenWithin(t, f.src)
	if err != nil || tok == nil || tok.AccessToken != "at-0" {
		t.Fatalf("Token = %+v, %v; want the cached at-0 at once", tok, err)
	}
	<-f.as.received // the background refresh reached the endpoint
	f.as.release()
	f.src.Settle()
	if got := f.token(t).AccessToken; got != "at-1" {
		t.Errorf("after the background refresh the store holds %s, want at-1", got)
	}
	if n := len(f.log.events("token_refreshed")); n != 1 {
		t.Errorf("%d token_refreshed lines, want 1", n)
	}
}

// Before its window a token is used as it is.
func TestFreshTokenCallsNobody(t *testing.T) {
	f := newFixture(t, t0.Add(54*time.Minute))
	if tok, err := f.src.Token(context.Background(), key); err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
	f.src.Settle()
	if n := f.as.calls.Load(); n != 0 {
		t.Errorf("the token endpoint got %d requests for a token 6 minutes from expiry, want 0", n)
	}
}

// Concurrent requests in the window start one refresh between them.
func TestConcurrentRequestsRefreshOnce(t *testing.T) {
	f := newFixture(t, t0.Add(56*time.Minute))
	f.as.holdAnswers(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if tok, err := f.src.Token(context.Background(), key); err != nil || tok == nil {
				t.Errorf("Token = %+v, %v", tok, err)
			}
		})
	}
	wg.Wait()
	f.as.release()
	f.src.Settle()
	if n := f.as.calls.Load(); n != 1 {
		t.Errorf("50 concurrent requests made %d refresh requests, want 1", n)
	}
}

// Two replicas on one store (two Sources, their own memory each) refresh
// once: the second waits for the lease and finds the new token.
func TestTwoSourcesShareTheLease(t *testing.T) {
	f := newFixture(t, t0.Add(56*time.Minute))
	other := f.source(t, f.back)
	f.as.holdAnswers(t)
	if _, err := tokenWithin(t, f.src); err != nil {
		t.Fatal(err)
	}
	<-f.as.received
	if _, err := tokenWithin(t, other); err != nil {
		t.Fatal(err)
	}
	f.as.release()
	f.src.Settle()
	other.Settle()
	if n := f.as.calls.Load(); n != 1 {
		t.Errorf("two sources sharing a store made %d refresh requests, want 1", n)
	}
}

// The backoff after the n-th failure: 1 s doubling to 30 s, shortened by
// jitter by at most half, never past the last try before expiry.
func TestBackoffGrowsAndIsJittered(t *testing.T) {
	tok := &upstream.Token{Issued: t0, Expiry: t0.Add(time.Hour)}
	now := t0.Add(50 * time.Minute) // far from expiry: no cut
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i, w := range want {
		w *= time.Second
		for _, j := range []float64{0, 0.25, 0.5, 0.999999} {
			got := nextAttempt(now, i+1, j, tok).Sub(now)
			if got > w || got < w/2 {
				t.Errorf("failure %d, jitter %v: wait %v, want within [%v, %v]", i+1, j, got, w/2, w)
			}
			if j == 0 && got != w {
				t.Errorf("failure %d without jitter: wait %v, want %v", i+1, got, w)
			}
		}
	}
	// 3 s before expiry a wait of 4 s is cut to the last try, 1 s before.
	now = t0.Add(time.Hour - 3*time.Second)
	if got, want := nextAttempt(now, 3, 0, tok), tok.Expiry.Add(-time.Second); !got.Equal(want) {
		t.Errorf("near expiry the next attempt is at %v, want the last try at %v", got, want)
	}
	// Past the last try the wait is not cut.
	now = t0.Add(time.Hour - 500*time.Millisecond)
	if got, want := nextAttempt(now, 3, 0, tok), now.Add(4*time.Second); !got.Equal(want) {
		t.Errorf("past the last try the next attempt is at %v, want %v", got, want)
	}
	// Once expired, the waits stop growing at 5 s: the user is held up.
	now = tok.Expiry
	for n, want := range map[int]time.Duration{1: time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 8: 5 * time.Second} {
		if got := nextAttempt(now, n, 0, tok).Sub(now); got != want {
			t.Errorf("expired, failure %d: wait %v, want %v", n, got, want)
		}
	}
	// A 4 s token has a 1 s window: its last try is a quarter of that before expiry.
	short := &upstream.Token{Issued: t0, Expiry: t0.Add(4 * time.Second)}
	if got, want := nextAttempt(t0.Add(3*time.Second), 1, 0, short), short.Expiry.Add(-250*time.Millisecond); !got.Equal(want) {
		t.Errorf("a 4 s token's last try is at %v, want %v", got, want)
	}
}

// While the authorization server fails: requests in the window keep the
// token, none calls the server while the key waits, one line per streak;
// only after expiry do requests get 502, at once while waiting; and the
// streak's end is logged once.
func TestFailureStreak(t *testing.T) {
	f := newFixture(t, t0.Add(56*time.Minute))
	f.as.status.Store(http.StatusServiceUnavailable)
	ctx := context.Background()
	use := func(when string) {
		t.Helper()
		tok, err := tokenWithin(t, f.src)
		f.src.Settle()
		if err != nil || tok == nil || tok.AccessToken != "at-0" {
			t.Fatalf("%s: Token = %+v, %v; want the cached token", when, tok, err)
		}
	}
	calls := func(when string, want int32) {
		t.Helper()
		if n := f.as.calls.Load(); n != want {
			t.Fatalf("%s: the token endpoint got %d requests, want %d", when, n, want)
		}
	}
	use("first request in the window")
	calls("first request in the window", 1)
	for range 20 {
		use("a request while waiting 1 s")
	}
	calls("20 requests while waiting", 1)
	f.clock.set(t0.Add(56*time.Minute + time.Second))
	use("after the first wait")
	calls("after the first wait", 2)
	f.clock.set(t0.Add(56*time.Minute + 2*time.Second)) // the second wait is 2 s
	use("during the second wait")
	calls("during the second wait", 2)
	if n := len(f.log.events("token_refresh_failed")); n != 1 {
		t.Errorf("%d token_refresh_failed lines for one streak of 2 failures, want 1", n)
	}

	// Expired: the request waits for one attempt, then gets 502.
	f.clock.set(t0.Add(time.Hour))
	_, err := f.src.Token(ctx, key)
	calls("the first request after expiry", 3)
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Code != apierror.CodeASUnreachable || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "expired") {
		t.Fatalf("after expiry: %v, want 502 %s saying the token expired", err, apierror.CodeASUnreachable)
	}
	// While waiting after that failure, requests fail at once.
	for range 10 {
		if _, err := f.src.Token(ctx, key); !errors.As(err, &ae) || ae.Code != apierror.CodeASUnreachable {
			t.Fatalf("in backoff after expiry: %v", err)
		}
	}
	calls("10 requests in backoff after expiry", 3)
	if f.token(t) == nil {
		t.Fatal("the failures dropped the token")
	}

	// The server is back: the next request after the wait refreshes.
	f.as.status.Store(0)
	f.clock.set(t0.Add(time.Hour + 4*time.Second))
	tok, err := f.src.Token(ctx, key)
	if err != nil || tok == nil || tok.AccessToken != "at-4" {
		t.Fatalf("after the server came back: %+v, %v; want the refreshed at-4", tok, err)
	}
	rec := f.log.events("token_refresh_recovered")
	if len(rec) != 1 || rec[0]["failed_attempts"] != float64(3) || rec[0]["failed_for"] != "4m4s" {
		t.Errorf("token_refresh_recovered lines %v, want one with failed_attempts 3 and failed_for 4m4s", rec)
	}
	if n := len(f.log.events("token_refresh_failed")); n != 1 {
		t.Errorf("%d token_refresh_failed lines, want 1", n)
	}
}

// A refusal (invalid_grant) drops the token, as before: the user consents
// again.
func TestRefusedRefreshDropsTheToken(t *testing.T) {
	f := newFixture(t, t0.Add(time.Hour+time.Second))
	f.as.status.Store(http.StatusBadRequest)
	tok, err := f.src.Token(context.Background(), key)
	if err != nil || tok != nil {
		t.Fatalf("Token = %+v, %v; want none (consent again)", tok, err)
	}
	if f.token(t) != nil {
		t.Error("the refused token is still stored")
	}
	if n := len(f.log.events("token_refresh_refused")); n != 1 {
		t.Errorf("%d token_refresh_refused lines, want 1", n)
	}
}

// A request still in flight with the token a background refresh replaced
// does not put the replaced tokens back, nor drop the new ones.
func TestNotesOfAReplacedTokenKeepTheRefreshedOne(t *testing.T) {
	f := newFixture(t, t0.Add(56*time.Minute))
	ctx := context.Background()
	old := f.token(t)
	old.StepUps = 1
	if _, err := tokenWithin(t, f.src); err != nil {
		t.Fatal(err)
	}
	f.src.Settle() // the background refresh stored at-1
	f.src.Answered(ctx, old)
	if got := f.token(t); got.AccessToken != "at-1" || got.RefreshToken != "rt-1" || got.StepUps != 0 {
		t.Errorf("after Answered with the replaced token the store holds %s/%s (step-ups %d), want at-1/rt-1", got.AccessToken, got.RefreshToken, got.StepUps)
	}
	if need, n := f.src.StepUp(ctx, old, []string{"write"}); n != 1 || len(need) != 1 {
		t.Errorf("StepUp = %v, %d", need, n)
	}
	if got := f.token(t); got.AccessToken != "at-1" || got.RefreshToken != "rt-1" {
		t.Errorf("after StepUp with the replaced token the store holds %s/%s, want at-1/rt-1", got.AccessToken, got.RefreshToken)
	}
	f.src.Rejected(ctx, old)
	if f.token(t) == nil {
		t.Error("a 401 to the replaced token dropped the refreshed one")
	}
}
