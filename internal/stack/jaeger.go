package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// CollectorHost is the OpenTelemetry receiver the docs' tracing examples
// name; in the stack, Jaeger's OTLP receivers answer for it, over gRPC on
// CollectorGRPCPort and HTTP on CollectorHTTPPort, with a certificate of
// the run's CA.
const (
	CollectorHost     = "otel-collector.example.com"
	CollectorGRPCPort = 4317
	CollectorHTTPPort = 4318
)

// JaegerBinary returns dir's jaeger, or an error saying how to build it.
func JaegerBinary(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "jaeger")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not built (make real-servers-build builds Jaeger into %s)", bin, dir)
	}
	return bin, nil
}

// Jaeger is a running Jaeger (v2, the OpenTelemetry Collector based
// backend): OTLP receivers over gRPC and HTTP, memory storage, and the
// query service's HTTP API, every port on 127.0.0.1.
type Jaeger struct {
	local    *Local
	dir      string
	proc     *process
	queryURL string
}

// StartJaeger runs dir's jaeger with a configuration of its own: the
// receivers (TLS with a certificate for CollectorHost) and the query API
// on fresh 127.0.0.1 ports, traces in memory, nothing else listening. It
// maps CollectorHost's ports onto the receivers until Close.
func (s *Local) StartJaeger(ctx context.Context, dir string) (_ *Jaeger, err error) {
	bin, err := JaegerBinary(dir)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "mcp-proxy-jaeger-")
	if err != nil {
		return nil, err
	}
	j := &Jaeger{local: s, dir: work}
	defer func() {
		if err != nil {
			j.Close()
		}
	}()
	leaf, err := s.ca.Issue(CollectorHost)
	if err != nil {
		return nil, err
	}
	cert, key := filepath.Join(work, "collector.crt"), filepath.Join(work, "collector.key")
	if err := leaf.WriteFiles(cert, key); err != nil {
		return nil, err
	}
	var ports [4]int // gRPC, HTTP, query HTTP, query gRPC
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	at := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	tls := map[string]any{"cert_file": cert, "key_file": key}
	cfg := map[string]any{
		"service": map[string]any{
			"extensions": []string{"jaeger_storage", "jaeger_query"},
			"pipelines": map[string]any{"traces": map[string]any{
				"receivers": []string{"otlp"}, "exporters": []string{"jaeger_storage_exporter"}}},
			// No metrics listener (8888 by default): only the ports above.
			"telemetry": map[string]any{"metrics": map[string]any{"level": "none"}, "logs": map[string]any{"level": "info"}},
		},
		"extensions": map[string]any{
			"jaeger_storage": map[string]any{"backends": map[string]any{"memstore": map[string]any{"memory": map[string]any{"max_traces": 10000}}}},
			// enable_tracing: false, or the query service traces itself to
			// localhost:4317, whoever listens there.
			"jaeger_query": map[string]any{"storage": map[string]any{"traces": "memstore"}, "enable_tracing": false,
				"http": map[string]any{"endpoint": at(ports[2])}, "grpc": map[string]any{"endpoint": at(ports[3])}},
		},
		"receivers": map[string]any{"otlp": map[string]any{"protocols": map[string]any{
			"grpc": map[string]any{"endpoint": at(ports[0]), "tls": tls},
			"http": map[string]any{"endpoint": at(ports[1]), "tls": tls},
		}}},
		"exporters": map[string]any{"jaeger_storage_exporter": map[string]any{"trace_storage": "memstore"}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(work, "jaeger.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	if j.proc, err = startProcess(ctx, "jaeger", bin, []string{"--config", "file:" + path}, work, "Everything is ready"); err != nil {
		return nil, err
	}
	j.queryURL = "http://" + at(ports[2])
	if err := waitHTTP(ctx, j.proc, http.DefaultClient, j.queryURL+"/api/v3/services"); err != nil {
		return nil, err
	}
	s.hosts.Set(CollectorHost, CollectorGRPCPort, netip.MustParseAddrPort(at(ports[0])))
	s.hosts.Set(CollectorHost, CollectorHTTPPort, netip.MustParseAddrPort(at(ports[1])))
	return j, nil
}

// Logs is what Jaeger printed.
func (j *Jaeger) Logs() string {
	if j.proc == nil {
		return ""
	}
	return j.proc.out.String()
}

// Close stops Jaeger and unmaps CollectorHost.
func (j *Jaeger) Close() error {
	var errs []error
	if j.proc != nil {
		errs = append(errs, j.proc.stop())
	}
	j.local.hosts.Delete(CollectorHost, CollectorGRPCPort)
	j.local.hosts.Delete(CollectorHost, CollectorHTTPPort)
	return errors.Join(append(errs, os.RemoveAll(j.dir))...)
}

// Span is one span of a trace as Jaeger's query API returns it.
type Span struct {
	// Service is the service.name of the span's resource.
	Service      string
	TraceID      string
	SpanID       string
	ParentSpanID string
	Name         string
	// Kind is OTLP's: 1 internal, 2 server, 3 client.
	Kind       int
	Attributes map[string]string
	// StatusCode is OTLP's: 0 unset, 1 ok, 2 error.
	StatusCode int
}

// ErrNoTrace is Trace's error while Jaeger has no span of the trace.
var ErrNoTrace = errors.New("jaeger has no span of the trace")

// Trace reads the spans of the trace traceID (32 hex digits) through the
// query service's API v3 (GET /api/v3/traces/{id}, OTLP JSON).
func (j *Jaeger) Trace(ctx context.Context, traceID string) ([]Span, error) {
	return j.get(ctx, "/api/v3/traces/"+traceID)
}

// AllSpans reads every span Jaeger holds, of every service, through the
// API v3's search (GET /api/v3/services, then /api/v3/traces per service).
func (j *Jaeger) AllSpans(ctx context.Context) ([]Span, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.queryURL+"/api/v3/services", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var services struct {
		Services []string `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&services); err != nil {
		return nil, fmt.Errorf("jaeger's services: %w", err)
	}
	now := time.Now().UTC()
	var all []Span
	for _, svc := range services.Services {
		q := url.Values{"query.service_name": {svc}, "query.num_traces": {"10000"},
			"query.start_time_min": {now.Add(-time.Hour).Format(time.RFC3339Nano)},
			"query.start_time_max": {now.Add(time.Minute).Format(time.RFC3339Nano)}}
		spans, err := j.get(ctx, "/api/v3/traces?"+q.Encode())
		if err != nil && !errors.Is(err, ErrNoTrace) {
			return nil, err
		}
		all = append(all, spans...)
	}
	return all, nil
}

func (j *Jaeger) get(ctx context.Context, path string) ([]Span, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.queryURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrNoTrace
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("jaeger answered %s: %s", resp.Status, b)
	}
	return parseOTLPTrace(b)
}

// otlpValue is an OTLP JSON AnyValue: the kinds the proxy writes.
type otlpValue struct {
	StringValue *string  `json:"stringValue"`
	IntValue    *string  `json:"intValue"` // int64 as a JSON string
	BoolValue   *bool    `json:"boolValue"`
	DoubleValue *float64 `json:"doubleValue"`
}

func (v otlpValue) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		return *v.IntValue
	case v.BoolValue != nil:
		return strconv.FormatBool(*v.BoolValue)
	case v.DoubleValue != nil:
		return strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64)
	}
	return ""
}

type otlpAttribute struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}

func attributeMap(as []otlpAttribute) map[string]string {
	m := make(map[string]string, len(as))
	for _, a := range as {
		m[a.Key] = a.Value.String()
	}
	return m
}

func parseOTLPTrace(b []byte) ([]Span, error) {
	var doc struct {
		Result struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []otlpAttribute `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []struct {
						TraceID      string          `json:"traceId"`
						SpanID       string          `json:"spanId"`
						ParentSpanID string          `json:"parentSpanId"`
						Name         string          `json:"name"`
						Kind         int             `json:"kind"`
						Attributes   []otlpAttribute `json:"attributes"`
						Status       struct {
							Code int `json:"code"`
						} `json:"status"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("jaeger's trace is not the OTLP JSON expected: %w", err)
	}
	var out []Span
	for _, rs := range doc.Result.ResourceSpans {
		service := attributeMap(rs.Resource.Attributes)["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out = append(out, Span{Service: service, TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID,
					Name: s.Name, Kind: s.Kind, Attributes: attributeMap(s.Attributes), StatusCode: s.Status.Code})
			}
		}
	}
	return out, nil
}

// WaitTrace polls Trace until done accepts the spans, or ctx ends: the
// proxy sends its spans in batches (every five seconds by default).
func (j *Jaeger) WaitTrace(ctx context.Context, traceID string, done func([]Span) bool) ([]Span, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var spans []Span
	for {
		s, err := j.Trace(ctx, traceID)
		switch {
		case err == nil:
			spans = s
			if done(spans) {
				return spans, nil
			}
		case !errors.Is(err, ErrNoTrace):
			return nil, err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return spans, fmt.Errorf("waiting for the trace %s in Jaeger: %w", traceID, ctx.Err())
		}
	}
}
