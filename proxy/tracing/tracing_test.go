package tracing

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
)

// TestKeysAreTheSemanticConventions: the keys the docs call semantic
// conventions are spelled as the conventions spell them.
func TestKeysAreTheSemanticConventions(t *testing.T) {
	for ours, theirs := range map[attribute.Key]attribute.Key{
		MCPMethodName: semconv.McpMethodNameKey, MCPSessionID: semconv.McpSessionIDKey, MCPProtocolVersion: semconv.McpProtocolVersionKey,
		JSONRPCRequestID: semconv.JSONRPCRequestIDKey, GenAIToolName: semconv.GenAIToolNameKey, GenAIPromptName: semconv.GenAIPromptNameKey,
		GenAIOperationName: semconv.GenAIOperationNameKey, HTTPRequestMethod: semconv.HTTPRequestMethodKey,
		HTTPResponseStatusCode: semconv.HTTPResponseStatusCodeKey, URLScheme: semconv.URLSchemeKey, URLPath: semconv.URLPathKey,
		ServerAddress: semconv.ServerAddressKey, ServerPort: semconv.ServerPortKey, NetworkProtocolVersion: semconv.NetworkProtocolVersionKey,
		UserAgentOriginal: semconv.UserAgentOriginalKey, ErrorType: semconv.ErrorTypeKey,
	} {
		if ours != theirs {
			t.Errorf("%s is %q in the semantic conventions", ours, theirs)
		}
	}
	if got := GenAIOperationName.String("execute_tool"); got != semconv.GenAIOperationNameExecuteTool {
		t.Errorf("gen_ai.operation.name of tools/call: %v, the conventions say %v", got, semconv.GenAIOperationNameExecuteTool)
	}
}

// TestAttributesIsTheConstants: every attribute.Key constant of this
// package is in Attributes, once, with the spans it is on and its meaning.
func TestAttributesIsTheConstants(t *testing.T) {
	declared := declaredKeys(t)
	seen := map[attribute.Key]bool{}
	for _, a := range Attributes() {
		if seen[a.Key] || declared[a.Key] == "" || a.Spans == "" || a.Meaning == "" {
			t.Errorf("Attributes: %s is listed twice, is no constant, or lacks spans or meaning", a.Key)
		}
		seen[a.Key] = true
	}
	for k, name := range declared {
		if !seen[k] {
			t.Errorf("constant %s (%s) is not in Attributes", name, k)
		}
	}
}

// declaredKeys are the attribute.Key constants of catalog.go, by value.
func declaredKeys(t *testing.T) map[attribute.Key]string {
	t.Helper()
	declared := map[attribute.Key]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "catalog.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if sel, ok := vs.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Key" {
				v, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
				declared[attribute.Key(v)] = vs.Names[0].Name
			}
		}
	}
	return declared
}

// TestNoAttributeLiteral: the proxy names an attribute only through the
// constants: no attribute key is a string literal outside this package.
func TestNoAttributeLiteral(t *testing.T) {
	files := 0
	walk := func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			strings.HasPrefix(filepath.ToSlash(path), "../../proxy/tracing/") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, isID := sel.X.(*ast.Ident); isID && id.Name == "attribute" {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					t.Errorf("%s: attribute.%s(%s): name attributes with the constants of proxy/tracing", path, sel.Sel.Name, lit.Value)
				}
			}
			return true
		})
		return nil
	}
	for _, dir := range []string{"../../proxy", "../../cmd"} {
		if err := filepath.WalkDir(dir, walk); err != nil {
			t.Fatal(err)
		}
	}
	if files < 50 {
		t.Fatalf("read only %d files", files)
	}
}

// TestOffCostsNothing: with no span in the context (tracing off), the
// helpers the request path calls allocate nothing.
func TestOffCostsNothing(t *testing.T) {
	type scopeKey struct{}
	ctx := context.WithValue(context.Background(), scopeKey{}, "request scope")
	m := &jsonrpc.Message{Method: "tools/call", Params: jsonrpc.Params{Name: "echo"}}
	h := http.Header{}
	allocs := testing.AllocsPerRun(100, func() {
		c, span := Start(ctx, "upstream token", trace.SpanKindInternal)
		Message(c, span, m)
		Inject(c, h)
		SetError(c, "upstream_unreachable")
		span.End()
	})
	if allocs != 0 {
		t.Errorf("the helpers allocate %v times per request with tracing off", allocs)
	}
	if len(h) != 0 {
		t.Errorf("Inject wrote %v without a trace", h)
	}
}

// receiver is an OTLP receiver over HTTP or gRPC that keeps the spans and
// headers it received.
type receiver struct {
	mu      sync.Mutex
	names   []string
	headers []string
	fail    bool
}

func (rc *receiver) add(req *coltracepb.ExportTraceServiceRequest, apiKey string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.headers = append(rc.headers, apiKey)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				rc.names = append(rc.names, s.Name)
			}
		}
	}
}

func (rc *receiver) got() (names, headers []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.names...), append([]string(nil), rc.headers...)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	fail := rc.fail
	rc.mu.Unlock()
	// 400, not 503: the exporter retries a 503 for up to a minute.
	if fail || r.URL.Path != "/base/v1/traces" {
		http.Error(w, "no", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.add(&req, r.Header.Get("Api-Key"))
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	rc *receiver
}

func (g grpcReceiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	g.rc.add(req, strings.Join(md.Get("api-key"), ","))
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// serveOneRequest runs one request through t's request span.
func serveOneRequest(t *testing.T, tr *Tracer) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(`{}`))
	tr.Serve(httptest.NewRecorder(), r, "mcp.test", "req-1", func(w http.ResponseWriter, r *http.Request) {
		Message(r.Context(), trace.SpanFromContext(r.Context()), &jsonrpc.Message{Method: "tools/list"})
		w.WriteHeader(http.StatusOK)
	})
}

// TestExportReachesTheReceiver: the exporters of both protocols send the
// spans, with the configured headers, over TLS with the given roots, to
// the receiver the proxy's dialer reaches (here a name it maps to a
// loopback port).
func TestExportReachesTheReceiver(t *testing.T) {
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("otel.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, protocol := range []string{config.TracingHTTP, config.TracingGRPC} {
		t.Run(protocol, func(t *testing.T) {
			rc := &receiver{}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			if protocol == config.TracingGRPC {
				srv := grpc.NewServer()
				coltracepb.RegisterTraceServiceServer(srv, grpcReceiver{rc: rc})
				go srv.Serve(ln)
				t.Cleanup(srv.Stop)
			} else {
				srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln)
				t.Cleanup(func() { srv.Close() })
			}
			endpoint := &url.URL{Scheme: "https", Host: "otel.test:4318", Path: "/base/v1/traces"}
			if protocol == config.TracingGRPC {
				endpoint.Path = ""
			}
			addr := ln.Addr().String()
			dial := func(ctx context.Context, network, a string) (net.Conn, error) {
				if a != "otel.test:4318" {
					t.Errorf("the exporter dialed %s", a)
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			tr, err := New(context.Background(), &config.TracingSettings{Endpoint: endpoint, Protocol: protocol,
				Sampler: config.Sampler{Name: "parentbased_always_on"}, ServiceName: "mcp-proxy", Headers: map[string]string{"api-key": "k1"}},
				Options{Log: slog.New(slog.DiscardHandler), Dial: dial, RootCAs: pool(ca.CertPEM())})
			if err != nil {
				t.Fatal(err)
			}
			serveOneRequest(t, tr)
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			names, headers := rc.got()
			if strings.Join(names, ",") != "tools/list" || strings.Join(headers, ",") != "k1" {
				t.Errorf("the receiver got spans %q with api-key %q, want tools/list with k1", names, headers)
			}
		})
	}
}

func pool(pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pem)
	return p
}

// TestExportFailuresAreLoggedOnce: a receiver that fails gets one
// trace_export_failed line per failure streak, and one
// trace_export_recovered when it answers again.
func TestExportFailuresAreLoggedOnce(t *testing.T) {
	rc := &receiver{fail: true}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var logs syncbuf.Buffer
	u, _ := url.Parse(srv.URL + "/base/v1/traces")
	tr, err := New(context.Background(), &config.TracingSettings{Endpoint: u, Protocol: config.TracingHTTP,
		Sampler: config.Sampler{Name: "always_on"}, ServiceName: "mcp-proxy"}, Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	for range 3 {
		serveOneRequest(t, tr)
		_ = tr.ForceFlush(context.Background())
	}
	rc.mu.Lock()
	rc.fail = false
	rc.mu.Unlock()
	serveOneRequest(t, tr)
	_ = tr.ForceFlush(context.Background())
	out := logs.String()
	if n := strings.Count(out, `"event":"trace_export_failed"`); n != 1 {
		t.Errorf("%d trace_export_failed lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `"event":"trace_export_recovered"`) || !strings.Contains(out, `"failed_exports":3`) {
		t.Errorf("no trace_export_recovered line after 3 failed exports:\n%s", out)
	}
	if !bytes.Contains([]byte(out), []byte(`"event":"tracing_enabled"`)) {
		t.Errorf("no tracing_enabled line:\n%s", out)
	}
}

// TestServeRecordsACutOffAnswer: a handler that panics after answering
// (ReverseProxy's http.ErrAbortHandler when an answer is cut off
// mid-stream) leaves the status the client got on the request's span,
// marked aborted, and the panic goes on to the server.
func TestServeRecordsACutOffAnswer(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(context.Background(), &config.TracingSettings{Endpoint: &url.URL{Scheme: "https", Host: "otel.test"},
		Protocol: config.TracingHTTP, Sampler: config.Sampler{Name: "always_on"}, ServiceName: "mcp-proxy"},
		Options{Log: slog.New(slog.DiscardHandler), Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("the handler's panic reached the server as %v, want http.ErrAbortHandler", v)
			}
		}()
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", nil)
		tr.Serve(httptest.NewRecorder(), r, "mcp.test", "rid", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			panic(http.ErrAbortHandler)
		})
	}()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want the request's", len(spans))
	}
	got := map[attribute.Key]string{}
	for _, kv := range spans[0].Attributes {
		got[kv.Key] = kv.Value.String()
	}
	if got[HTTPResponseStatusCode] != "200" || got[ErrorType] != ErrorAborted || spans[0].Status.Code != codes.Error {
		t.Errorf("the cut-off request's span: status code %q, error.type %q, status %v; want 200, %s, Error",
			got[HTTPResponseStatusCode], got[ErrorType], spans[0].Status, ErrorAborted)
	}
}
