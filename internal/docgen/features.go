package docgen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	gherkin "github.com/cucumber/gherkin/go/v42"
	messages "github.com/cucumber/messages/go/v34"
)

// Feature is one feature file, read for publishing.
type Feature struct {
	// File is the file's path from the repository root, as the results
	// manifest names it: features/quickstart.feature.
	File string `json:"file"`
	// Slug names its page: features/<slug>.
	Slug        string     `json:"slug"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Tags        []string   `json:"tags"`
	Background  []Step     `json:"background,omitempty"`
	Scenarios   []Scenario `json:"scenarios"`
	Source      string     `json:"source"`
}

// Scenario is one scenario (or scenario outline) of a feature file.
type Scenario struct {
	Name    string   `json:"name"`
	Keyword string   `json:"keyword"`
	Anchor  string   `json:"anchor"`
	Line    int      `json:"line"`
	Tags    []string `json:"tags"`
	Steps   []Step   `json:"steps"`
	// Examples are the tables of a scenario outline: a header row, then
	// one row per run.
	Examples [][][]string `json:"examples,omitempty"`
}

// Step is one step as the feature file writes it.
type Step struct {
	Keyword   string     `json:"keyword"`
	Text      string     `json:"text"`
	DocString string     `json:"doc_string,omitempty"`
	Table     [][]string `json:"table,omitempty"`
}

// LoadFeatures reads every *.feature file of dir; rel is the directory's
// path from the repository root ("features").
func LoadFeatures(dir, rel string) ([]*Feature, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.feature"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*Feature
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := ParseFeature(filepath.ToSlash(filepath.Join(rel, filepath.Base(p))), data)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// ParseFeature parses one feature file; file is its path from the
// repository root.
func ParseFeature(file string, data []byte) (*Feature, error) {
	doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(data), (&messages.Incrementing{}).NewId)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if doc.Feature == nil {
		return nil, fmt.Errorf("%s: no Feature", file)
	}
	f := &Feature{
		File:        file,
		Slug:        strings.TrimSuffix(filepath.Base(file), ".feature"),
		Name:        doc.Feature.Name,
		Description: dedent(doc.Feature.Description),
		Tags:        tagNames(doc.Feature.Tags),
		Source:      string(data),
	}
	anchors := make(map[string]int)
	names := make(map[string]int)
	var dup error
	add := func(sc *messages.Scenario, ruleTags []string) {
		if prev, ok := names[sc.Name]; ok && dup == nil {
			dup = fmt.Errorf("%s:%d: the scenario name %q is already used on line %d; the results manifest tells scenarios apart by name, so give each its own", file, sc.Location.Line, sc.Name, prev)
		}
		names[sc.Name] = int(sc.Location.Line)
		s := Scenario{
			Name:    sc.Name,
			Keyword: sc.Keyword,
			Anchor:  uniqueAnchor(anchors, "scenario-"+Slugify(sc.Name)),
			Line:    int(sc.Location.Line),
			Tags:    append(append([]string{}, ruleTags...), tagNames(sc.Tags)...),
			Steps:   steps(sc.Steps),
		}
		for _, ex := range sc.Examples {
			var table [][]string
			if ex.TableHeader != nil {
				table = append(table, cells(ex.TableHeader))
			}
			for _, r := range ex.TableBody {
				table = append(table, cells(r))
			}
			s.Examples = append(s.Examples, table)
		}
		f.Scenarios = append(f.Scenarios, s)
	}
	for _, c := range doc.Feature.Children {
		switch {
		case c.Background != nil:
			f.Background = steps(c.Background.Steps)
		case c.Scenario != nil:
			add(c.Scenario, nil)
		case c.Rule != nil:
			for _, rc := range c.Rule.Children {
				if rc.Scenario != nil {
					add(rc.Scenario, tagNames(c.Rule.Tags))
				}
			}
		}
	}
	if dup != nil {
		return nil, dup
	}
	return f, nil
}

func steps(in []*messages.Step) []Step {
	out := make([]Step, 0, len(in))
	for _, s := range in {
		st := Step{Keyword: strings.TrimSpace(s.Keyword), Text: s.Text}
		if s.DocString != nil {
			st.DocString = s.DocString.Content
		}
		if s.DataTable != nil {
			for _, r := range s.DataTable.Rows {
				st.Table = append(st.Table, cells(r))
			}
		}
		out = append(out, st)
	}
	return out
}

func cells(r *messages.TableRow) []string {
	out := make([]string, len(r.Cells))
	for i, c := range r.Cells {
		out[i] = c.Value
	}
	return out
}

func tagNames(tags []*messages.Tag) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		out = append(out, t.Name)
	}
	return out
}

// dedent removes the indentation common to the non-blank lines of s.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			lines[i] = l[common:]
		} else {
			lines[i] = strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// Slugify makes an HTML id from a name: lower-case letters, digits and
// dashes.
func Slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func uniqueAnchor(seen map[string]int, a string) string {
	seen[a]++
	if n := seen[a]; n > 1 {
		return a + "-" + strconv.Itoa(n)
	}
	return a
}

// FeatureTable lists the feature files of the repository at root: the
// table the Conformance page shows, linking each file's page.
func FeatureTable(root string) (string, error) {
	fs, err := LoadFeatures(filepath.Join(root, "features"), "features")
	if err != nil {
		return "", err
	}
	if len(fs) == 0 {
		return "", fmt.Errorf("no feature files in %s", filepath.Join(root, "features"))
	}
	var b strings.Builder
	b.WriteString("| Feature file | Feature | Scenarios | Verifies |\n|---|---|---|---|\n")
	for _, f := range fs {
		var pages []string
		for _, t := range f.Tags {
			if p, ok := strings.CutPrefix(t, "@doc:"); ok {
				if _, err := os.Stat(filepath.Join(root, "docs", p+".md")); err == nil {
					p = fmt.Sprintf("[%s](%s.md)", p, p)
				}
				pages = append(pages, p)
			}
		}
		verifies := strings.Join(pages, ", ")
		if verifies == "" {
			verifies = "—"
		}
		fmt.Fprintf(&b, "| [`%s`](../%s) | %s | %d | %s |\n", filepath.Base(f.File), f.File, cell(f.Name), len(f.Scenarios), verifies)
	}
	return b.String(), nil
}
