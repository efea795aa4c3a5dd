package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardFile is the Grafana dashboard the docs publish.
const dashboardFile = "../../docs/grafana/mcp-proxy.json"

var (
	metricRef = regexp.MustCompile(`(mcp_proxy_[a-z_]+)(\{[^}]*\})?`)
	matcher   = regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)`)
	grouping  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// TestDashboardNamesOnlyExportedMetrics reads every query of the
// dashboard: each metric it names is in Catalog (a histogram's _bucket,
// _count and _sum included), each label it matches or groups by is one of
// that metric's, every metric of the catalog is on some panel, and every
// panel says what question it answers. A renamed metric or label fails
// here, not on an operator's screen.
func TestDashboardNamesOnlyExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title, Description string
			Targets            []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Name, Query string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	byName := map[string]Description{}
	for _, d := range Catalog() {
		byName[d.Name] = d
	}
	used := map[string]bool{}
	var exprs []string
	for _, p := range dash.Panels {
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("panel %q does not say what question it answers (description)", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if strings.Contains(v.Query, "mcp_proxy_") {
			exprs = append(exprs, v.Query)
		}
	}
	for _, e := range exprs {
		labels := []string{"le"}
		for _, m := range metricRef.FindAllStringSubmatch(e, -1) {
			d, ok := lookup(byName, m[1])
			if !ok {
				t.Errorf("%q names %s, which the proxy does not export", e, m[1])
				continue
			}
			used[d.Name] = true
			labels = append(labels, d.Labels...)
			for _, l := range matcher.FindAllStringSubmatch(m[2], -1) {
				if !slices.Contains(d.Labels, l[1]) {
					t.Errorf("%q matches label %s, which %s does not have (%v)", e, l[1], d.Name, d.Labels)
				}
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(e, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
					t.Errorf("%q groups by %s, which none of its metrics has", e, l)
				}
			}
		}
	}
	for name := range byName {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// lookup finds the catalog entry of a series name: the metric itself, or
// a histogram's _bucket, _count or _sum.
func lookup(byName map[string]Description, series string) (Description, bool) {
	if d, ok := byName[series]; ok {
		return d, true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if d, ok := byName[strings.TrimSuffix(series, suffix)]; ok && d.Type == "histogram" && strings.HasSuffix(series, suffix) {
			return d, true
		}
	}
	return Description{}, false
}
