package docgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
)

// ErrorCodes renders the error catalog (apierror.Catalog).
func ErrorCodes(string) (string, error) {
	var b strings.Builder
	b.WriteString("| Code | HTTP status | Meaning |\n|---|---|---|\n")
	for _, e := range apierror.Catalog() {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", e.Code, e.Status, e.Meaning)
	}
	return b.String(), nil
}

// MetricsTable renders the metrics catalog (metrics.Catalog).
func MetricsTable(string) (string, error) {
	var b strings.Builder
	b.WriteString("| Metric | Type | Labels | Meaning |\n|---|---|---|---|\n")
	for _, d := range metrics.Catalog() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.Name, d.Type, codeList(d.Labels), d.Help)
	}
	return b.String(), nil
}

// LogEvents renders the log events (event.Catalog).
func LogEvents(string) (string, error) {
	var b strings.Builder
	b.WriteString("| Event | Level | Keys | Meaning |\n|---|---|---|---|\n")
	for _, e := range event.Catalog() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", e.Event, e.Level, codeList(e.Keys), e.Meaning)
	}
	return b.String(), nil
}

// TraceSpans renders the spans the proxy starts (tracing.Spans).
func TraceSpans(string) (string, error) {
	var b strings.Builder
	b.WriteString("| Span | Kind | What it covers |\n|---|---|---|\n")
	for _, s := range tracing.Spans() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, s.Kind, s.Meaning)
	}
	return b.String(), nil
}

// TraceAttributes renders the attributes of the proxy's spans
// (tracing.Attributes).
func TraceAttributes(string) (string, error) {
	var b strings.Builder
	b.WriteString("| Attribute | Spans | Value |\n|---|---|---|\n")
	for _, a := range tracing.Attributes() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", a.Key, a.Spans, a.Meaning)
	}
	return b.String(), nil
}

// TracingVariables renders the OTEL_* variables the proxy reads
// (config.TracingVariables).
func TracingVariables(string) (string, error) {
	var b strings.Builder
	b.WriteString("| Variable | Fills in | Meaning |\n|---|---|---|\n")
	for _, v := range config.TracingVariables() {
		setting := v.Setting
		if setting != "—" {
			setting = "`" + setting + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, setting, v.Meaning)
	}
	return b.String(), nil
}

func codeList(s []string) string {
	if len(s) == 0 {
		return "—"
	}
	return "`" + strings.Join(s, "`, `") + "`"
}

// DashboardPanels renders the panels of the Grafana dashboard
// (docs/grafana/mcp-proxy.json): each panel's title and the question it
// answers, from the dashboard itself.
func DashboardPanels(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "grafana", "mcp-proxy.json"))
	if err != nil {
		return "", err
	}
	var dash struct {
		Panels []struct{ Title, Description string }
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		return "", fmt.Errorf("docs/grafana/mcp-proxy.json: %v", err)
	}
	var out strings.Builder
	out.WriteString("| Panel | The question it answers |\n|---|---|\n")
	for _, p := range dash.Panels {
		fmt.Fprintf(&out, "| %s | %s |\n", p.Title, p.Description)
	}
	return out.String(), nil
}
