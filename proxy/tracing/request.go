package tracing

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/go-json-experiment/json"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
)

type requestSpanKey struct{}

// requestSpan is the span of the request ctx belongs to, when it is
// recorded.
func requestSpan(ctx context.Context) (trace.Span, bool) {
	span, ok := ctx.Value(requestSpanKey{}).(trace.Span)
	return span, ok && span.IsRecording()
}

// Serve serves r with next inside the request's span: the MCP client's
// trace continued when r carries a traceparent header, a new one
// otherwise (as the sampler decides). route is the route's host, "" when
// none matched; requestID the id of the request's log lines.
func (t *Tracer) Serve(w http.ResponseWriter, r *http.Request, route, requestID string, next func(http.ResponseWriter, *http.Request)) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if !span.IsRecording() {
		// Left out by the sampler: its context still goes to the remote
		// server (not sampled), and nothing else is spent on it.
		next(w, r.WithContext(ctx))
		return
	}
	span.SetAttributes(HTTPRequestMethod.String(r.Method), URLScheme.String("https"), URLPath.String(r.URL.Path),
		ServerAddress.String(hostOnly(r.Host)), NetworkProtocolVersion.String(protocolVersion(r)),
		Route.String(route), RequestID.String(requestID))
	if ua := r.UserAgent(); ua != "" {
		span.SetAttributes(UserAgentOriginal.String(ua))
	}
	HeaderAttributes(span, r.Header)
	rec := &statusRecorder{ResponseWriter: w}
	defer rec.finish(span)
	next(rec, r.WithContext(context.WithValue(ctx, requestSpanKey{}, span)))
}

// finish records the answer's status on the request's span, also when the
// handler panicked: ReverseProxy aborts with http.ErrAbortHandler when an
// answer is cut off mid-stream (the MCP client or the remote server went
// away), after the client got its status. The panic goes on to the
// server.
func (s *statusRecorder) finish(span trace.Span) {
	v := recover()
	switch {
	case s.code != 0:
		SetStatus(span, s.code, false)
	case v == nil:
		SetStatus(span, http.StatusOK, false)
	}
	if v != nil {
		span.SetStatus(codes.Error, "the answer was cut off")
		span.SetAttributes(ErrorType.String(ErrorAborted))
		panic(v)
	}
}

// HeaderAttributes puts the MCP attributes of a request's headers on
// span.
func HeaderAttributes(span trace.Span, h http.Header) {
	if v := h.Get("Mcp-Session-Id"); v != "" {
		span.SetAttributes(MCPSessionID.String(v))
	}
	if v := h.Get("Mcp-Protocol-Version"); v != "" {
		span.SetAttributes(MCPProtocolVersion.String(v))
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

func protocolVersion(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "2"
	}
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}

// Message puts the MCP attributes of m, the JSON-RPC message of the
// request of ctx, on the request's span (and on span, the upstream call's,
// when it is recorded), and names the request's span after it, as the MCP
// semantic conventions do: "{mcp.method.name} {target}".
func Message(ctx context.Context, span trace.Span, m *jsonrpc.Message) {
	req, ok := requestSpan(ctx)
	if !ok || m == nil || m.Method == "" {
		return
	}
	name, attrs := messageAttributes(m)
	req.SetName(name)
	req.SetAttributes(attrs...)
	if span.IsRecording() && span != req {
		span.SetName(name)
		span.SetAttributes(attrs...)
	}
}

func messageAttributes(m *jsonrpc.Message) (string, []attribute.KeyValue) {
	name := m.Method
	attrs := []attribute.KeyValue{MCPMethodName.String(m.Method)}
	if id := requestID(m); id != "" {
		attrs = append(attrs, JSONRPCRequestID.String(id))
	}
	switch m.Method {
	case "tools/call":
		attrs = append(attrs, GenAIToolName.String(m.Params.Name), GenAIOperationName.String("execute_tool"))
		name += " " + m.Params.Name
	case "prompts/get":
		attrs = append(attrs, GenAIPromptName.String(m.Params.Name))
		name += " " + m.Params.Name
	}
	return name, attrs
}

// requestID is a message's id as the client sent it: a string's text, a
// number's digits; "" for a notification or a null id.
func requestID(m *jsonrpc.Message) string {
	switch id := m.ID; {
	case len(id) == 0 || id.Kind() == 'n':
		return ""
	case id.Kind() == '"':
		var s string
		if json.Unmarshal(id, &s) != nil {
			return ""
		}
		return s
	default:
		return string(id)
	}
}

// SetError records the catalog code of the error the proxy answered with
// as error.type, on the request's span and on the span of ctx (the
// upstream call's, when the call failed).
func SetError(ctx context.Context, code string) {
	if span, ok := requestSpan(ctx); ok {
		span.SetAttributes(ErrorType.String(code))
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(ErrorType.String(code))
	}
}

// statusRecorder notes the status of the answer; Unwrap lets
// http.ResponseController (which ReverseProxy flushes with) reach the
// server's writer.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush serves callers that test for http.Flusher.
func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
