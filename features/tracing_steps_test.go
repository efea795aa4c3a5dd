package features

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

func init() { moreSteps = append(moreSteps, tracingSteps) }

// traceWorld is a scenario's Jaeger and the trace its MCP client started.
type traceWorld struct {
	jaeger *stack.Jaeger
	// traceID and clientSpan are the traceparent the MCP client sent with
	// its call, by user.
	traceID, clientSpan map[string]string
	// spans are the spans of the last trace read back from Jaeger.
	spans []stack.Span
}

var (
	traceWorldsMu sync.Mutex
	traceWorlds   = map[*world]*traceWorld{}
)

func (w *world) traces() (*traceWorld, error) {
	traceWorldsMu.Lock()
	defer traceWorldsMu.Unlock()
	tw := traceWorlds[w]
	if tw == nil {
		return nil, errors.New("Jaeger is not running (Given Jaeger is running)")
	}
	return tw, nil
}

func tracingSteps(w *world, sc *godog.ScenarioContext) {
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		traceWorldsMu.Lock()
		tw := traceWorlds[w]
		delete(traceWorlds, w)
		traceWorldsMu.Unlock()
		if tw == nil {
			return ctx, nil
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Jaeger's log:\n%s\n", tail(tw.jaeger.Logs(), 40))
		}
		return ctx, tw.jaeger.Close()
	})
	sc.Step(`^Jaeger is running$`, w.jaegerRunning)
	sc.Step(`^the proxy's environment has the documented variables "([^"]+)"$`, w.documentedVariables)
	sc.Step(`^(\w+)'s MCP client calls the tool "([^"]+)" with the text "([^"]*)" in a trace of its own$`, w.callInTrace)
	sc.Step(`^Jaeger has (\w+)'s trace with these spans of the service "([^"]+)"$`, w.jaegerHasTrace)
	sc.Step(`^in Jaeger the span "([^"]+)" has the attributes$`, w.spanAttributes)
	sc.Step(`^Jaeger has these spans of the service "([^"]+)" from alice's consent, each under a request's span$`, w.consentSpans)
	sc.Step(`^the remote MCP server received (\w+)'s trace in the traceparent of the span "([^"]+)"$`, w.remoteReceivedTrace)
	sc.Step(`^no span in Jaeger holds a token or code of (\w+)'s sign-in, consent or calls$`, w.noTokenInSpans)
}

func (w *world) jaegerRunning(ctx context.Context) error {
	st, err := w.stack()
	if err != nil {
		return err
	}
	local, ok := st.(*stack.Local)
	if !ok {
		return fmt.Errorf("Jaeger runs with the local stack only, not with %s", st.Mode())
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	j, err := local.StartJaeger(ctx, realServersDir())
	if err != nil {
		return err
	}
	traceWorldsMu.Lock()
	traceWorlds[w] = &traceWorld{jaeger: j, traceID: map[string]string{}, clientSpan: map[string]string{}}
	traceWorldsMu.Unlock()
	return nil
}

// documentedVariables puts the variables of a documented shell example
// (export NAME=value lines, then the serve command the stack runs) into
// the proxy's environment.
func (w *world) documentedVariables(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	st, err := w.stack()
	if err != nil {
		return err
	}
	local, ok := st.(*stack.Local)
	if !ok {
		return fmt.Errorf("the proxy's environment is set on the local stack only, not on %s", st.Mode())
	}
	lines := strings.Split(strings.TrimSpace(e.Body), "\n")
	if last := lines[len(lines)-1]; last != "mcp-proxy serve -config config.yaml" {
		return fmt.Errorf("the example %s ends with %q, not the command the stack runs (mcp-proxy serve -config config.yaml)", id, last)
	}
	for _, line := range lines[:len(lines)-1] {
		kv, ok := strings.CutPrefix(line, "export ")
		k, v, isKV := strings.Cut(kv, "=")
		if !ok || !isKV || !strings.HasPrefix(k, "OTEL_") {
			return fmt.Errorf("the example %s has %q, not an export OTEL_NAME=value line", id, line)
		}
		local.SetProxyEnv(k, v)
	}
	return nil
}

// callInTrace calls the tool with a traceparent of a new trace, sampled,
// as an MCP client instrumented with OpenTelemetry sends it.
func (w *world) callInTrace(ctx context.Context, user, tool, text string) error {
	tw, err := w.traces()
	if err != nil {
		return err
	}
	var id [24]byte
	_, _ = rand.Read(id[:])
	traceID, span := hex.EncodeToString(id[:16]), hex.EncodeToString(id[16:])
	tw.traceID[user], tw.clientSpan[user] = traceID, span
	return w.call(actors.WithTraceparent(ctx, "00-"+traceID+"-"+span+"-01"), user, tool, map[string]any{"text": text})
}

var kindNames = map[int]string{1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

// spanRef is how the steps name a span: "NAME (KIND)".
func spanRef(s stack.Span) string { return s.Name + " (" + kindNames[s.Kind] + ")" }

// jaegerHasTrace waits until Jaeger has the user's trace with a span of
// the service for every row (span, kind, parent: the user's MCP client or
// another row's "NAME (KIND)"), each the only one of its name and kind.
func (w *world) jaegerHasTrace(ctx context.Context, user, service string, table *godog.Table) error {
	tw, err := w.traces()
	if err != nil {
		return err
	}
	traceID := tw.traceID[user]
	if traceID == "" {
		return fmt.Errorf("%s's MCP client started no trace", user)
	}
	rows := table.Rows[1:]
	have := func(spans []stack.Span) bool {
		for _, row := range rows {
			if _, err := only(spans, service, row.Cells[0].Value+" ("+row.Cells[1].Value+")"); err != nil {
				return false
			}
		}
		return true
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	spans, err := tw.jaeger.WaitTrace(ctx, traceID, have)
	if err != nil {
		return fmt.Errorf("%w; Jaeger has %s", err, describeSpans(spans))
	}
	tw.spans = spans
	for _, row := range rows {
		ref, parent := row.Cells[0].Value+" ("+row.Cells[1].Value+")", row.Cells[2].Value
		s, _ := only(spans, service, ref)
		want := tw.clientSpan[user]
		if parent != user+"'s MCP client" {
			p, err := only(spans, service, parent)
			if err != nil {
				return err
			}
			want = p.SpanID
		}
		if s.ParentSpanID != want || s.TraceID != traceID {
			return fmt.Errorf("the span %s has parent %s in trace %s, want %s (%s) in %s", ref, s.ParentSpanID, s.TraceID, want, parent, traceID)
		}
	}
	return nil
}

// only is the one span of service called ref ("NAME (KIND)").
func only(spans []stack.Span, service, ref string) (stack.Span, error) {
	var found []stack.Span
	for _, s := range spans {
		if s.Service == service && spanRef(s) == ref {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return stack.Span{}, fmt.Errorf("%d spans %s of the service %s; the trace has %s", len(found), ref, service, describeSpans(spans))
	}
	return found[0], nil
}

func describeSpans(spans []stack.Span) string {
	if len(spans) == 0 {
		return "no span"
	}
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%s of %s", spanRef(s), s.Service))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// spanAttributes checks attributes of a span of the last trace read: a
// value, "(any)" for any value, or "(USER's MCP session)".
func (w *world) spanAttributes(ref string, table *godog.Table) error {
	s, err := w.lastSpan(ref)
	if err != nil {
		return err
	}
	session := regexp.MustCompile(`^\((\w+)'s MCP session\)$`)
	for _, row := range table.Rows {
		k, want := row.Cells[0].Value, row.Cells[1].Value
		got, ok := s.Attributes[k]
		switch m := session.FindStringSubmatch(want); {
		case m != nil:
			a, err := w.actor(m[1])
			if err != nil {
				return err
			}
			want = a.SessionID()
		case want == "(any)" && ok:
			continue
		}
		if !ok || got != want {
			return fmt.Errorf("the span %s has %s = %q (set: %v), want %q; its attributes: %v", ref, k, got, ok, want, s.Attributes)
		}
	}
	return nil
}

// consentSpans reads every span Jaeger holds and checks that for each row
// (span, kind, attribute, value) the service has such a span whose parent
// is a server span of the same service and trace: the request of the
// consent (sign-in, authorization, callback) that did the work.
func (w *world) consentSpans(ctx context.Context, service string, table *godog.Table) error {
	tw, err := w.traces()
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	spans, err := tw.jaeger.AllSpans(ctx)
	if err != nil {
		return err
	}
	byID := map[string]stack.Span{}
	for _, s := range spans {
		byID[s.TraceID+"/"+s.SpanID] = s
	}
	for _, row := range table.Rows[1:] {
		ref, k, want := row.Cells[0].Value+" ("+row.Cells[1].Value+")", row.Cells[2].Value, row.Cells[3].Value
		var seen []string
		found := false
		for _, s := range spans {
			if s.Service != service || spanRef(s) != ref {
				continue
			}
			p, ok := byID[s.TraceID+"/"+s.ParentSpanID]
			seen = append(seen, fmt.Sprintf("%s=%q under %q", k, s.Attributes[k], spanRef(p)))
			if s.Attributes[k] == want && ok && p.Service == service && kindNames[p.Kind] == "server" {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("no span %s of %s with %s = %q under a request's span; seen: %v; Jaeger has %s", ref, service, k, want, seen, describeSpans(spans))
		}
	}
	return nil
}

// remoteReceivedTrace checks that the mock MCP server recorded the user's
// tool call with a traceparent of the user's trace whose parent is the
// span ref of the proxy.
func (w *world) remoteReceivedTrace(ctx context.Context, user, ref string) error {
	tw, err := w.traces()
	if err != nil {
		return err
	}
	span, err := w.lastSpan(ref)
	if err != nil {
		return err
	}
	evs, err := w.events(ctx, stack.UpstreamHost, mockmcp.KindMCP)
	if err != nil {
		return err
	}
	want := "00-" + tw.traceID[user] + "-" + span.SpanID + "-01"
	var seen []string
	for _, e := range evs {
		if e.Detail[mockmcp.DetailMCPMethod] != "tools/call" {
			continue
		}
		if e.Detail[mockmcp.DetailTraceparent] == want {
			return nil
		}
		seen = append(seen, e.Detail[mockmcp.DetailTraceparent])
	}
	return fmt.Errorf("the remote MCP server received no tools/call with traceparent %s; its tools/call traceparents: %q", want, seen)
}

// noTokenInSpans reads every span of every trace Jaeger holds, of every
// service, and looks in their names and attribute values for the tokens
// the user's MCP client holds and those the remote authorization server
// and the identity provider issued or received (codes, refresh tokens),
// by fingerprint, as the doubles record them.
func (w *world) noTokenInSpans(ctx context.Context, user string) error {
	tw, err := w.traces()
	if err != nil {
		return err
	}
	secrets, err := w.issuedSecrets(ctx, user)
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	spans, err := tw.jaeger.AllSpans(ctx)
	if err != nil {
		return err
	}
	if len(spans) < 3 {
		return fmt.Errorf("Jaeger holds only %d spans", len(spans))
	}
	for _, s := range spans {
		text := []string{s.Name}
		for k, v := range s.Attributes {
			text = append(text, k, v)
		}
		for _, word := range tokenCandidates(strings.Join(text, " ")) {
			if secrets[control.Fingerprint(word)] {
				return fmt.Errorf("the span %s holds a token (%s…)", spanRef(s), word[:6])
			}
		}
	}
	return nil
}

// issuedSecrets are the fingerprints of the user's downstream token and of
// every token and code the remote authorization server and the identity
// provider issued or were sent.
func (w *world) issuedSecrets(ctx context.Context, user string) (map[string]bool, error) {
	mine, err := w.clientToken(ctx, user)
	if err != nil {
		return nil, err
	}
	secrets := map[string]bool{mine: true}
	for _, host := range []string{stack.ASHost, stack.IdPHost} {
		evs, err := w.events(ctx, host, "")
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			for _, k := range []string{"access_token", "refresh_token", "id_token", "code"} {
				for _, fp := range []string{e.Detail[k], e.Params[k]} {
					if fp != "" {
						secrets[fp] = true
					}
				}
			}
		}
	}
	return secrets, nil
}

// tokenWords split a span's text into words a token could be, several
// ways: a JWT keeps its dots, a token in a query or a header value stands
// after = or a space.
var tokenWords = []*regexp.Regexp{
	regexp.MustCompile(`[A-Za-z0-9_.~+/=-]{16,}`),
	regexp.MustCompile(`[A-Za-z0-9_.~+/-]{16,}`),
	regexp.MustCompile(`[A-Za-z0-9_.~-]{16,}`),
	regexp.MustCompile(`[A-Za-z0-9_~-]{16,}`),
}

func tokenCandidates(text string) []string {
	var out []string
	for _, re := range tokenWords {
		out = append(out, re.FindAllString(text, -1)...)
	}
	return out
}

// lastSpan is the span ref ("name (kind)") of the last trace read.
func (w *world) lastSpan(ref string) (*stack.Span, error) {
	tw, err := w.traces()
	if err != nil {
		return nil, err
	}
	var s *stack.Span // the last with that name, as the trace lists them
	for i := range tw.spans {
		if spanRef(tw.spans[i]) == ref {
			s = &tw.spans[i]
		}
	}
	if s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("the last trace read has no span %s: %s", ref, describeSpans(tw.spans))
}
