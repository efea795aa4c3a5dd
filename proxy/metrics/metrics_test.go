package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
)

const route = "mcp.example.com"

// series returns the value of the counter, or the sample count of the
// histogram, named name with exactly the labels given.
func series(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if labelsOf(s) != labelString(labels) {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue()
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount())
			case s.Gauge != nil:
				return s.Gauge.GetValue()
			}
		}
	}
	return 0
}

func labelsOf(s *dto.Metric) string {
	m := map[string]string{}
	for _, l := range s.GetLabel() {
		m[l.GetName()] = l.GetValue()
	}
	return labelString(m)
}

func labelString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func TestEachMethodMovesItsSeries(t *testing.T) {
	m := metrics.New()
	m.TokenCache(route, metrics.CacheHit)
	m.TokenCache(route, metrics.CacheHit)
	m.TokenCache(route, metrics.CacheMiss)
	m.TokenCache(route, metrics.CacheRefresh)
	m.AuthorizationFlow(route, metrics.AuthGranted, 3*time.Second)
	m.UpstreamRequest(route, 200, 20*time.Millisecond)
	m.UpstreamRequest(route, 200, 30*time.Millisecond)
	m.UpstreamRequest(route, 0, time.Second)
	m.Error(route, apierror.CodeUpstreamUnreachable)
	m.Error("", apierror.CodeUnknownHost)
	m.DiscoveryCache(metrics.DiscoveryHit)
	m.DiscoveryCache(metrics.DiscoveryMiss)
	m.Refresh(route, metrics.RefreshRefused)
	m.Registration(metrics.RegistrationCIMD)
	m.BuildInfo("v0.0.0-test")
	m.BuildInfo("v1.2.3")

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metrics.NameTokenCacheRequests, map[string]string{"route": route, "result": "hit"}, 2},
		{metrics.NameTokenCacheRequests, map[string]string{"route": route, "result": "miss"}, 1},
		{metrics.NameTokenCacheRequests, map[string]string{"route": route, "result": "refresh"}, 1},
		{metrics.NameAuthorizationDuration, map[string]string{"route": route, "outcome": "granted"}, 1},
		{metrics.NameAuthorizationDuration, map[string]string{"route": route, "outcome": "failed"}, 0},
		{metrics.NameUpstreamDuration, map[string]string{"route": route, "code": "200"}, 2},
		{metrics.NameUpstreamDuration, map[string]string{"route": route, "code": "error"}, 1},
		{metrics.NameErrors, map[string]string{"route": route, "type": "upstream_unreachable"}, 1},
		{metrics.NameErrors, map[string]string{"route": "", "type": "unknown_host"}, 1},
		{metrics.NameDiscoveryCache, map[string]string{"result": "hit"}, 1},
		{metrics.NameDiscoveryCache, map[string]string{"result": "miss"}, 1},
		{metrics.NameTokenRefreshes, map[string]string{"route": route, "result": "refused"}, 1},
		{metrics.NameTokenRefreshes, map[string]string{"route": route, "result": "success"}, 0},
		{metrics.NameRegistrations, map[string]string{"method": "cimd"}, 1},
		{metrics.NameBuildInfo, map[string]string{"version": "v1.2.3"}, 1},
		{metrics.NameBuildInfo, map[string]string{"version": "v0.0.0-test"}, 0},
	} {
		if got := series(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The histogram puts 20ms and 30ms in the right buckets.
	want := `
# HELP mcp_proxy_upstream_request_duration_seconds Time from forwarding a request to the remote MCP server's response headers, by HTTP status code ("error" when no response came).
# TYPE mcp_proxy_upstream_request_duration_seconds histogram
mcp_proxy_upstream_request_duration_seconds_bucket{code="200",route="mcp.example.com",le="0.005"} 0
mcp_proxy_upstream_request_duration_seconds_bucket{code="200",route="mcp.example.com",le="0.01"} 0
mcp_proxy_upstream_request_duration_seconds_bucket{code="200",route="mcp.example.com",le="0.025"} 1
mcp_proxy_upstream_request_duration_seconds_bucket{code="200",route="mcp.example.com",le="0.05"} 2
`
	got, err := testutil.CollectAndFormat(m.Registry(), expfmt.TypeTextPlain, metrics.NameUpstreamDuration)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		if !strings.Contains(string(got), line+"\n") {
			t.Errorf("exposition lacks %q:\n%s", line, got)
		}
	}
}

// TestHotPathDoesNotAllocate: the per-request methods reuse the series
// resolved for the route.
func TestHotPathDoesNotAllocate(t *testing.T) {
	m := metrics.New()
	m.TokenCache(route, metrics.CacheHit)
	m.UpstreamRequest(route, 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.TokenCache(route, metrics.CacheHit) }); n != 0 {
		t.Errorf("TokenCache allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { m.UpstreamRequest(route, 200, time.Millisecond) }); n != 0 {
		t.Errorf("UpstreamRequest allocates %v times per call, want 0", n)
	}
}

func TestCatalogMatchesRegistry(t *testing.T) {
	m := metrics.New()
	// A vector shows up in Gather only once it has a series.
	m.TokenCache(route, metrics.CacheHit)
	m.AuthorizationFlow(route, metrics.AuthGranted, time.Second)
	m.UpstreamRequest(route, 200, time.Second)
	m.Error(route, apierror.CodeInternal)
	m.DiscoveryCache(metrics.DiscoveryHit)
	m.Refresh(route, metrics.RefreshSuccess)
	m.Registration(metrics.RegistrationDCR)
	m.TokenAcquired(route, "enterprise", true)
	m.BuildInfo("v1")
	m.StoreStaleRead("access")
	m.Reload(metrics.ReloadSuccess)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "mcp_proxy_") {
			registered[mf.GetName()] = mf
		} else if !strings.HasPrefix(mf.GetName(), "go_") && !strings.HasPrefix(mf.GetName(), "process_") && !strings.HasPrefix(mf.GetName(), "promhttp_") {
			t.Errorf("metric %s is neither mcp_proxy_* nor a runtime collector's", mf.GetName())
		}
	}
	cat := metrics.Catalog()
	if len(cat) != len(registered) {
		t.Errorf("catalog lists %d metrics, the registry has %d mcp_proxy_* metrics", len(cat), len(registered))
	}
	for _, d := range cat {
		mf := registered[d.Name]
		if mf == nil {
			t.Errorf("catalog metric %s is not registered", d.Name)
			continue
		}
		if got := strings.ToLower(mf.GetType().String()); got != d.Type {
			t.Errorf("%s: type %s, catalog says %s", d.Name, got, d.Type)
		}
		if mf.GetHelp() != d.Help {
			t.Errorf("%s: help %q, catalog says %q", d.Name, mf.GetHelp(), d.Help)
		}
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		if want := slices.Sorted(slices.Values(d.Labels)); !slices.Equal(labels, want) {
			t.Errorf("%s: labels %v, catalog says %v", d.Name, labels, d.Labels)
		}
		if d.Type == "histogram" {
			var bounds []float64
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
			if !slices.Equal(bounds, d.Buckets) {
				t.Errorf("%s: buckets %v, catalog says %v", d.Name, bounds, d.Buckets)
			}
		}
		if !strings.HasPrefix(d.Name, "mcp_proxy_") || d.Help == "" {
			t.Errorf("catalog entry %+v: want an mcp_proxy_ name and help", d)
		}
	}
}

func TestAdminHandler(t *testing.T) {
	m := metrics.New()
	m.TokenCache(route, metrics.CacheHit)
	var notReady error
	srv := httptest.NewServer(metrics.AdminHandler(m, func() error { return notReady }))
	defer srv.Close()
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/healthz", 200, "ok\n"},
		{"GET", "/readyz", 200, "ready\n"},
		{"GET", "/metrics", 200, `mcp_proxy_token_cache_requests_total{result="hit",route="mcp.example.com"} 1`},
		{"HEAD", "/healthz", 200, ""},
		{"POST", "/healthz", 405, ""},
		{"GET", "/", 404, ""},
		{"GET", "/debug/pprof/", 404, ""},
	} {
		status, body := get(c.method, c.path)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s %s = %d %q, want %d containing %q", c.method, c.path, status, body, c.status, c.body)
		}
	}
	notReady = errors.New("store: Redis at 127.0.0.1:6379 does not answer")
	if status, body := get("GET", "/readyz"); status != 503 || body != "not ready: store: Redis at 127.0.0.1:6379 does not answer\n" {
		t.Errorf("/readyz when not ready = %d %q, want 503 with the reason", status, body)
	}
	if status, _ := get("GET", "/healthz"); status != 200 {
		t.Errorf("/healthz when not ready = %d, want 200 (the process runs)", status)
	}
	if status, _ := get("GET", "/readyz"); status != 503 {
		t.Errorf("/readyz = %d", status)
	}
	nilReady := httptest.NewServer(metrics.AdminHandler(m, nil))
	defer nilReady.Close()
	if resp, err := http.Get(nilReady.URL + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz with a nil ready func: %v %v, want 200", resp, err)
	}
}
