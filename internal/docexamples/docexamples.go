// Package docexamples extracts the examples of the operator documentation:
// every fenced code block whose info string carries an id, such as
//
//	```yaml {id="quickstart-minimal"}
//
// Scenarios load examples by id and use their bodies verbatim; the site
// build renders each with the scenarios that verified it. An id is unique
// across all pages.
package docexamples

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Example is one identified code block.
type Example struct {
	ID   string
	Lang string
	// Page is the page's name: its file name without ".md", such as
	// "quickstart".
	Page string
	// File and Line locate the opening fence.
	File string
	Line int
	// Body is the block's content, byte for byte, ending in a newline.
	Body string
}

// Set is every example of a docs directory.
type Set struct {
	byID map[string]*Example
}

var (
	fenceOpen = regexp.MustCompile("^(```+)\\s*([A-Za-z0-9_+-]*)\\s*(\\{[^}]*\\})?\\s*$")
	idAttr    = regexp.MustCompile(`\bid\s*=\s*"([^"]+)"`)
	validID   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Load reads every .md file under dir.
func Load(dir string) (*Set, error) {
	s := &Set{byID: make(map[string]*Example)}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		exs, err := Parse(path, data)
		if err != nil {
			return err
		}
		for _, e := range exs {
			if prev, dup := s.byID[e.ID]; dup {
				return fmt.Errorf("%s:%d: example id %q is already used at %s:%d", e.File, e.Line, e.ID, prev.File, prev.Line)
			}
			s.byID[e.ID] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Parse extracts the identified examples of one page.
func Parse(file string, data []byte) ([]*Example, error) {
	page := strings.TrimSuffix(filepath.Base(file), ".md")
	var out []*Example
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *Example
	var fence string
	var body strings.Builder
	inBlock := false
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if inBlock {
			if strings.TrimSpace(text) == fence {
				inBlock = false
				if cur != nil {
					cur.Body = body.String()
					out = append(out, cur)
					cur = nil
				}
				continue
			}
			if cur != nil {
				body.WriteString(text)
				body.WriteByte('\n')
			}
			continue
		}
		m := fenceOpen.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		inBlock, fence = true, m[1]
		body.Reset()
		if id := idAttr.FindStringSubmatch(m[3]); id != nil {
			if !validID.MatchString(id[1]) {
				return nil, fmt.Errorf("%s:%d: example id %q must be lower-case letters, digits and dashes", file, line, id[1])
			}
			cur = &Example{ID: id[1], Lang: m[2], Page: page, File: file, Line: line}
		}
	}
	if inBlock && cur != nil {
		return nil, fmt.Errorf("%s:%d: example %q has no closing fence", file, cur.Line, cur.ID)
	}
	return out, sc.Err()
}

// Get returns the example with id, or an error naming the ids that exist.
func (s *Set) Get(id string) (*Example, error) {
	if e, ok := s.byID[id]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("no example with id %q in the docs (known: %s)", id, strings.Join(s.IDs(), ", "))
}

// IDs returns every id, sorted.
func (s *Set) IDs() []string {
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// All returns every example, sorted by id.
func (s *Set) All() []*Example {
	out := make([]*Example, 0, len(s.byID))
	for _, id := range s.IDs() {
		out = append(out, s.byID[id])
	}
	return out
}
