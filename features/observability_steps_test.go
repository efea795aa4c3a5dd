package features

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, observabilitySteps) }

func observabilitySteps(w *world, sc *godog.ScenarioContext) {
	metricStep := func(name string, labels []string) (float64, error) {
		m := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		return w.metric(context.Background(), name, m)
	}
	sc.Step(`^the metric "([^"]+)" with (\w+) "([^"]*)"(?: and (\w+) "([^"]*)")? rose$`, func(name, k1, v1, k2, v2 string) error {
		labels := []string{k1, v1}
		if k2 != "" {
			labels = append(labels, k2, v2)
		}
		now, err := metricStep(name, labels)
		if err != nil {
			return err
		}
		key := name + fmt.Sprint(labels)
		before := w.metricMarks[key]
		if now <= before {
			return fmt.Errorf("%s%v is %v, it was %v before the last step", name, labels, now, before)
		}
		return nil
	})
	sc.Step(`^the metric "([^"]+)" with (\w+) "([^"]*)"(?: and (\w+) "([^"]*)")? is at least (\d+)$`, func(name, k1, v1, k2, v2 string, n int) error {
		labels := []string{k1, v1}
		if k2 != "" {
			labels = append(labels, k2, v2)
		}
		got, err := metricStep(name, labels)
		if err != nil {
			return err
		}
		if got < float64(n) {
			return fmt.Errorf("%s%v = %v, want at least %d", name, labels, got, n)
		}
		return nil
	})
	sc.Step(`^the admin listener answers "([^"]+)" with (\d+)$`, func(ctx context.Context, path string, status int) error {
		base, err := w.adminURL()
		if err != nil {
			return err
		}
		resp, err := http.Get(base + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != status {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s answered %d: %s", path, resp.StatusCode, b)
		}
		return nil
	})
	sc.Step(`^every line the proxy logged has the keys the observability page lists for its event$`, w.logKeysMatchDocs)
	sc.Step(`^no line the proxy logged contains a token (\w+)'s MCP client or the remote server received$`, w.noTokenInLogs)
	// Every tool call marks the metrics, so "rose" compares with the value
	// before the step that follows.
	sc.StepContext().Before(func(ctx context.Context, st *godog.Step) (context.Context, error) {
		if strings.Contains(st.Text, "calls the tool") && w.st != nil {
			w.markMetrics()
		}
		return ctx, nil
	})
}

func (w *world) adminURL() (string, error) {
	a, ok := w.st.(stack.AdminReader)
	if !ok || a.AdminURL() == "" {
		return "", fmt.Errorf("the %s stack does not expose the proxy's admin listener", w.st.Mode())
	}
	return a.AdminURL(), nil
}

// scrape reads the proxy's metrics in the Prometheus text format.
func (w *world) scrape(ctx context.Context) (string, error) {
	base, err := w.adminURL()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf)$`)

// metric sums the samples of name whose labels include want.
func (w *world) metric(ctx context.Context, name string, want map[string]string) (float64, error) {
	text, err := w.scrape(ctx)
	if err != nil {
		return 0, err
	}
	total, found := 0.0, false
	for _, line := range strings.Split(text, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		ok := true
		for k, v := range want {
			if !strings.Contains(m[2], k+`="`+v+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return 0, err
		}
		total += f
		found = true
	}
	if !found {
		return 0, nil
	}
	return total, nil
}

// markMetrics remembers every series' value, for the "rose" steps.
func (w *world) markMetrics() {
	text, err := w.scrape(context.Background())
	if err != nil {
		return
	}
	w.metricMarks = map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f, _ := strconv.ParseFloat(m[3], 64)
		// Record under every label pair combination the steps use.
		var pairs []string
		for _, kv := range strings.Split(strings.Trim(m[2], "{}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				pairs = append(pairs, k, strings.Trim(v, `"`))
			}
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			for j := i + 2; j+1 < len(pairs); j += 2 {
				w.metricMarks[m[1]+fmt.Sprint([]string{pairs[i], pairs[i+1], pairs[j], pairs[j+1]})] += f
				w.metricMarks[m[1]+fmt.Sprint([]string{pairs[j], pairs[j+1], pairs[i], pairs[i+1]})] += f
			}
			w.metricMarks[m[1]+fmt.Sprint([]string{pairs[i], pairs[i+1]})] += f
		}
	}
}

// logKeysMatchDocs reads the log events table of docs/observability.md
// and checks every logged line of a documented event against it: each key
// the line has beyond time, level, msg and event must be documented.
func (w *world) logKeysMatchDocs() error {
	doc, err := docPage(w, "observability")
	if err != nil {
		return err
	}
	keysOf := map[string][]string{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| [^|]+ \\| ([^|]+) \\|")
	for _, line := range strings.Split(doc, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			keysOf[m[1]] = regexp.MustCompile("`([a-z_]+)`").FindAllString(m[2], -1)
		}
	}
	if len(keysOf) == 0 {
		return fmt.Errorf("the observability page has no log events table")
	}
	checked := 0
	for _, line := range w.logLines() {
		ev, _ := line["event"].(string)
		documented, ok := keysOf[ev]
		if !ok {
			return fmt.Errorf("the proxy logged event %q, which the observability page does not list", ev)
		}
		for k := range line {
			switch k {
			case "time", "level", "msg", "event":
				continue
			}
			if !strings.Contains(strings.Join(documented, " "), "`"+k+"`") {
				return fmt.Errorf("event %s carries key %q, which the observability page does not list for it (%v)", ev, k, documented)
			}
		}
		checked++
	}
	if checked == 0 {
		return fmt.Errorf("the proxy logged nothing")
	}
	return nil
}

// noTokenInLogs checks that neither the token the MCP client holds nor any
// token the remote server received (nor any the AS issued) appears in the
// proxy's log, by comparing fingerprints of every word of the log.
func (w *world) noTokenInLogs(ctx context.Context, user string) error {
	mine, err := w.clientToken(ctx, user)
	if err != nil {
		return err
	}
	secrets := map[string]bool{mine: true}
	evs, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return err
	}
	for _, e := range evs {
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if fp := e.Detail[k]; fp != "" {
				secrets[fp] = true
			}
		}
	}
	for _, word := range regexp.MustCompile(`[A-Za-z0-9_.~+/=-]{20,}`).FindAllString(w.st.ProxyLog(), -1) {
		if secrets[control.Fingerprint(word)] {
			return fmt.Errorf("the proxy's log contains a token (%s…)", word[:6])
		}
	}
	return nil
}
