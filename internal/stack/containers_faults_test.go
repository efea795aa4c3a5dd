package stack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
)

// The fault operations on both stacks: the in-process stack always, the
// container stack when a Docker engine answers (make test starts one in
// CI). Each operation must have the effect a real process would show.
func TestFaultsLocal(t *testing.T) {
	st, err := NewLocal()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testFaults(t, st)
}

func TestFaultsContainers(t *testing.T) {
	ctx := context.Background()
	if _, err := DockerEngine(ctx); err != nil {
		t.Skipf("no Docker engine answers, so the container stack cannot run here: %v", err)
	}
	defer func() {
		if err := CleanupContainers(ctx); err != nil {
			t.Errorf("CleanupContainers: %v", err)
		}
	}()
	st, err := NewContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testFaults(t, st)
}

func testFaults(t *testing.T, st Stack) {
	ctx := context.Background()
	docs, err := docexamples.Load("../../docs")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := docs.Get("quickstart-minimal")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteConfig(cfg.Body); err != nil {
		t.Fatal(err)
	}
	if err := st.StartProxy(ctx); err != nil {
		t.Fatal(err)
	}

	get := func(url string, timeout time.Duration) (int, []byte, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := (&http.Client{Transport: st.Transport()}).Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	answers := func(what, url string, want int) {
		t.Helper()
		code, body, err := get(url, 10*time.Second)
		if err != nil || code != want {
			t.Fatalf("%s: GET %s = %d, %v (%s); want %d", what, url, code, err, body, want)
		}
	}
	fails := func(what, url string) {
		t.Helper()
		start := time.Now()
		if code, _, err := get(url, 1500*time.Millisecond); err == nil {
			t.Fatalf("%s: GET %s = %d; want no answer", what, url, code)
		} else {
			t.Logf("%s: GET %s failed after %v: %v", what, url, time.Since(start).Round(time.Millisecond), err)
		}
	}
	// keys returns the AS's signing keys: a new process makes new ones.
	keys := func() string {
		t.Helper()
		_, b, err := get("https://"+ASHost+"/.well-known/oauth-authorization-server", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			JWKS string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(b, &meta); err != nil || meta.JWKS == "" {
			t.Fatalf("AS metadata %s: %v", b, err)
		}
		_, b, err = get(meta.JWKS, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	last := time.Now()
	must := func(what string, err error) {
		t.Helper()
		t.Logf("%s after %v", what, time.Since(last).Round(time.Millisecond))
		last = time.Now()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	asMeta := "https://" + ASHost + "/.well-known/oauth-authorization-server"
	proxyURL := "https://" + ProxyHost + "/mcp"

	answers("running", asMeta, 200)
	before := keys()
	must("StopService", st.StopService(ctx, ASHost))
	fails("stopped", asMeta)
	must("StartService", st.StartService(ctx, ASHost))
	answers("started again", asMeta, 200)
	if keys() == before {
		t.Error("the AS kept its signing keys across a stop and start; a new process makes new ones")
	}
	must("PauseService", st.PauseService(ctx, ASHost))
	fails("paused", asMeta)
	must("UnpauseService", st.UnpauseService(ctx, ASHost))
	answers("unpaused", asMeta, 200)
	must("RestartService", st.RestartService(ctx, ASHost))
	answers("restarted", asMeta, 200)

	answers("proxy running", proxyURL, 401)
	must("RestartProxy", st.RestartProxy(ctx))
	answers("proxy restarted", proxyURL, 401)
	must("PauseService(proxy)", st.PauseService(ctx, ProxyHost))
	fails("proxy paused", proxyURL)
	must("UnpauseService(proxy)", st.UnpauseService(ctx, ProxyHost))
	answers("proxy unpaused", proxyURL, 401)
	must("StopService(proxy)", st.StopService(ctx, ProxyHost))
	fails("proxy stopped", proxyURL)
	must("StartService(proxy)", st.StartService(ctx, ProxyHost))
	answers("proxy started again", proxyURL, 401)
	if err := st.StartProxy(ctx); err == nil {
		t.Error("StartProxy while the proxy runs succeeded")
	}
	must("StopService(proxy)", st.StopService(ctx, ProxyHost))
	must("StartProxy after a stop", st.StartProxy(ctx))
	answers("proxy started anew", proxyURL, 401)

	if err := st.StopService(ctx, "nowhere.example"); !errors.Is(err, ErrUnknownService) {
		t.Errorf("StopService(nowhere.example) = %v, want ErrUnknownService", err)
	}
	if d := st.RefusedDials(); len(d) > 0 {
		t.Errorf("refused dials: %v", d)
	}
}
