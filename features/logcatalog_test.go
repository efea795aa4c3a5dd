package features

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/event"
)

// checkLogCatalog holds every line the proxy logged in the scenario to
// the event catalog that docs/observability.md is generated from: a known
// event, at its documented level, with no key the catalog does not list.
// So the docs' table cannot drift from what the code writes, keys
// included.
func (w *world) checkLogCatalog() error {
	if w.st == nil {
		return nil
	}
	catalog := map[string]event.Doc{}
	for _, e := range event.Catalog() {
		catalog[string(e.Event)] = e
	}
	var problems []string
	for _, line := range strings.Split(w.st.ProxyLog(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			continue
		}
		name, _ := m["event"].(string)
		e, ok := catalog[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("event %q is not in the catalog: %s", name, line))
			continue
		}
		if level, _ := m["level"].(string); !slices.Contains(strings.Split(e.Level, " or "), level) {
			problems = append(problems, fmt.Sprintf("event %s logged at %s, the catalog says %s", name, level, e.Level))
		}
		for k := range m {
			if k == "time" || k == "level" || k == "msg" || k == "event" || slices.Contains(e.Keys, k) {
				continue
			}
			problems = append(problems, fmt.Sprintf("event %s carries key %q, which the catalog does not list", name, k))
		}
	}
	slices.Sort(problems)
	problems = slices.Compact(problems)
	if len(problems) > 0 {
		return fmt.Errorf("the proxy's log disagrees with its event catalog (event.Catalog, docs/observability.md):\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}
