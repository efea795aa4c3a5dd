// Package tracing is the proxy's OpenTelemetry traces: a span per request
// it serves, continuing the MCP client's W3C trace context, with the
// semantic conventions' MCP attributes; child spans for the upstream token
// step, refreshes, discovery, the code exchange and the call to the remote
// server, whose traceparent header names the proxy's span. Spans go to an
// OTLP receiver (HTTP or gRPC) through the proxy's own dialer, so the
// receiver is reached as every host the configuration names.
//
// Off (no Tracer), the request path starts no span and allocates nothing:
// a step that would start a child span finds no recording span in its
// context and goes on. The tracer is the proxy's own, never the
// OpenTelemetry globals, so several proxies in one process (the harness)
// each keep theirs.
package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
)

// ScopeName is the instrumentation scope of the proxy's spans.
const ScopeName = "github.com/mcp-proxy/mcp-proxy/proxy"

// exportTimeout bounds one export to the receiver.
const exportTimeout = 10 * time.Second

// Options are how a Tracer reaches its receiver and what it says about the
// proxy.
type Options struct {
	// Version is the proxy's version, the service.version of its spans.
	Version string
	// Log receives the tracing_enabled line and export failures.
	Log *slog.Logger
	// Dial makes the exporter's connections (the proxy's guarded dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs are trusted for the receiver's certificate; nil: the
	// system's.
	RootCAs *x509.CertPool
	// Exporter replaces the OTLP exporter (tests).
	Exporter sdktrace.SpanExporter
}

// Tracer starts the proxy's spans and sends them to the receiver.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
	closers  []func() error
}

// New returns the Tracer of s; nil, nil when s is nil (tracing is off).
func New(ctx context.Context, s *config.TracingSettings, o Options) (*Tracer, error) {
	if s == nil {
		return nil, nil
	}
	t := &Tracer{}
	exp := o.Exporter
	if exp == nil {
		var err error
		if exp, err = t.exporter(ctx, s, o); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", s.ServiceName), attribute.String("service.version", o.Version)}
	for _, kv := range s.Resource {
		attrs = append(attrs, attribute.String(kv[0], kv[1]))
	}
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(&loggingExporter{SpanExporter: exp, log: o.Log, endpoint: s.Endpoint.String()}),
		sdktrace.WithSampler(sampler(s.Sampler)),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	t.tracer = t.provider.Tracer(ScopeName, trace.WithInstrumentationVersion(o.Version))
	o.Log.Info("tracing enabled", event.TracingEnabled.Attr(), slog.String("endpoint", s.Endpoint.String()),
		slog.String("protocol", s.Protocol), slog.String("sampler", s.Sampler.String()), slog.String("service_name", s.ServiceName),
		slog.String("settings_from", fmt.Sprintf("endpoint: %s, protocol: %s, sampler: %s, service_name: %s",
			s.From["endpoint"], s.From["protocol"], s.From["sampler"], s.From["service_name"])))
	return t, nil
}

func sampler(s config.Sampler) sdktrace.Sampler {
	var root sdktrace.Sampler
	switch s.Name {
	case "always_on", "parentbased_always_on":
		root = sdktrace.AlwaysSample()
	case "always_off", "parentbased_always_off":
		root = sdktrace.NeverSample()
	default:
		root = sdktrace.TraceIDRatioBased(s.Ratio)
	}
	if s.Name == "always_on" || s.Name == "always_off" || s.Name == "traceidratio" {
		return root
	}
	return sdktrace.ParentBased(root)
}

// exporter builds the OTLP exporter of s. The endpoint, headers, timeout
// and TLS trust are given, so the exporter's own reading of the
// environment applies only to compression (OTEL_EXPORTER_OTLP_COMPRESSION);
// config has read the variables the proxy honours.
func (t *Tracer) exporter(ctx context.Context, s *config.TracingSettings, o Options) (sdktrace.SpanExporter, error) {
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	headers := s.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	if s.Protocol == config.TracingGRPC {
		creds := credentials.NewTLS(tlsConfig)
		if s.Endpoint.Scheme == "http" {
			creds = insecure.NewCredentials()
		}
		conn, err := grpc.NewClient("passthrough:///"+s.Endpoint.Host, grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }))
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, conn.Close)
		return otlptracegrpc.New(ctx, otlptracegrpc.WithGRPCConn(conn), otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithTimeout(exportTimeout))
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	t.closers = append(t.closers, func() error { tr.CloseIdleConnections(); return nil })
	return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.Endpoint.String()),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: tr, Timeout: exportTimeout}),
		otlptracehttp.WithHeaders(headers), otlptracehttp.WithTimeout(exportTimeout))
}

// Shutdown sends the spans not sent yet and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	err := t.provider.Shutdown(ctx)
	for _, c := range t.closers {
		_ = c()
	}
	return err
}

// ForceFlush sends the spans ended so far (tests).
func (t *Tracer) ForceFlush(ctx context.Context) error { return t.provider.ForceFlush(ctx) }

// loggingExporter writes the exporter's failures to the proxy's log, one
// line when exports start failing and one when they work again, instead
// of OpenTelemetry's global error handler (a plain line on standard
// error). Spans of a failed export are dropped: the request path never
// waits for the receiver.
type loggingExporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string

	mu     sync.Mutex
	failed int
	since  time.Time
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err != nil:
		e.failed++
		if e.failed == 1 {
			e.since = time.Now()
			e.log.Warn("sending spans failed", event.TraceExportFailed.Attr(), slog.String("endpoint", e.endpoint),
				slog.Int("spans", len(spans)), slog.Any("error", err))
		}
	case e.failed > 0:
		e.log.Info("sending spans works again", event.TraceExportRecovered.Attr(), slog.String("endpoint", e.endpoint),
			slog.Int("failed_exports", e.failed), slog.String("failed_for", time.Since(e.since).Round(time.Millisecond).String()))
		e.failed = 0
	}
	return nil
}

// noSpan is what Start returns on a request that is not recorded: a
// span that does nothing, already boxed, so returning it allocates
// nothing.
var noSpan trace.Span = noop.Span{}

// Start starts a child span of the span in ctx when that one is recorded;
// else it returns ctx and a span that does nothing (tracing off, or a
// request the sampler left out, whose children would be left out too).
func Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(ScopeName).Start(ctx, name, trace.WithSpanKind(kind))
}

// Inject writes the trace context of ctx (traceparent, tracestate) into h,
// when ctx has one: the remote server continues the proxy's trace. Without
// one (tracing off), h keeps what the MCP client sent.
func Inject(ctx context.Context, h http.Header) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// SetStatus records an HTTP answer's status on span, and marks the span
// failed for a 5xx (and, for a client span, a 4xx) as the HTTP semantic
// conventions say; error.type is then the status, unless the proxy
// answered with an error of its catalog, which names it (SetError).
func SetStatus(span trace.Span, code int, client bool) {
	span.SetAttributes(HTTPResponseStatusCode.Int(code))
	if code < 500 && (!client || code < 400) {
		return
	}
	span.SetStatus(codes.Error, "")
	if ro, ok := span.(sdktrace.ReadOnlySpan); ok {
		for _, kv := range ro.Attributes() {
			if kv.Key == ErrorType {
				return
			}
		}
	}
	span.SetAttributes(ErrorType.String(strconv.Itoa(code)))
}
