package proxy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEventsAreTheCodes checks that every event name written anywhere in
// the proxy's code is in Events, and every entry of Events is written, so
// the docs' table (generated from Events) covers what the code logs.
func TestEventsAreTheCodes(t *testing.T) {
	re := regexp.MustCompile(`"event",\s*"([a-z_]+)"`)
	written := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			written[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, e := range Events() {
		documented = append(documented, e.Event)
		if !written[e.Event] {
			t.Errorf("Events lists %s, which no code writes", e.Event)
		}
	}
	for ev := range written {
		if !slices.Contains(documented, ev) {
			t.Errorf("the code writes event %s, which Events does not list", ev)
		}
	}
}
