package docgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A Generator produces the Markdown of one generated block from the
// repository at root.
type Generator func(root string) (string, error)

// Generators are the generated blocks the docs may contain, by name. Every
// one must appear in some page: a table that vanished from the docs is an
// error, as is a block naming a generator that does not exist.
var Generators = map[string]Generator{
	"config-reference":  ConfigReference,
	"feature-files":     FeatureTable,
	"error-codes":       ErrorCodes,
	"metrics":           MetricsTable,
	"log-events":        LogEvents,
	"dashboard-panels":  DashboardPanels,
	"trace-spans":       TraceSpans,
	"trace-attributes":  TraceAttributes,
	"tracing-variables": TracingVariables,
}

// UpdateCommand is what a person runs to rewrite the generated blocks.
const UpdateCommand = "make docs"

var (
	beginMarker = regexp.MustCompile(`^<!-- BEGIN GENERATED ([a-z0-9-]+)(?::[^>]*)? -->$`)
	endMarker   = regexp.MustCompile(`^<!-- END GENERATED ([a-z0-9-]+) -->$`)
)

// Block is one generated block of a page.
type Block struct {
	Name string
	File string
	// Line is the line of the BEGIN marker.
	Line int
	// Start and End are the byte offsets of the block's content: just after
	// the BEGIN marker's line and just before the END marker's line.
	Start, End int
}

// FindBlocks returns the generated blocks of one page.
func FindBlocks(file string, data []byte) ([]Block, error) {
	var out []Block
	var cur *Block
	off := 0
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		text := strings.TrimSpace(string(line))
		if m := beginMarker.FindStringSubmatch(text); m != nil {
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: BEGIN GENERATED %s inside the open block %s of line %d", file, i+1, m[1], cur.Name, cur.Line)
			}
			cur = &Block{Name: m[1], File: file, Line: i + 1, Start: off + len(line)}
		} else if m := endMarker.FindStringSubmatch(text); m != nil {
			if cur == nil || cur.Name != m[1] {
				return nil, fmt.Errorf("%s:%d: END GENERATED %s without its BEGIN", file, i+1, m[1])
			}
			cur.End = off
			out = append(out, *cur)
			cur = nil
		} else if strings.Contains(text, "GENERATED") && strings.HasPrefix(text, "<!--") {
			return nil, fmt.Errorf("%s:%d: %q is not a generated-block marker; write <!-- BEGIN GENERATED name --> and <!-- END GENERATED name -->", file, i+1, text)
		}
		off += len(line)
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: BEGIN GENERATED %s has no END GENERATED %s", file, cur.Line, cur.Name, cur.Name)
	}
	return out, nil
}

// render runs the generator of b, with a blank line on each side so the
// Markdown around the markers stays valid.
func render(gens map[string]Generator, root string, b Block) (string, error) {
	gen, ok := gens[b.Name]
	if !ok {
		names := make([]string, 0, len(gens))
		for n := range gens {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("%s:%d: no generator called %q (known: %s)", b.File, b.Line, b.Name, strings.Join(names, ", "))
	}
	s, err := gen(root)
	if err != nil {
		return "", fmt.Errorf("%s:%d: generating %s: %w", b.File, b.Line, b.Name, err)
	}
	return "\n" + strings.TrimSpace(s) + "\n\n", nil
}

// Check compares every generated block of the pages under docsDir with what
// its generator produces from the repository at root, and reports every
// block that differs, every unknown generator and every generator no page
// uses.
func Check(gens map[string]Generator, root, docsDir string) error {
	return walk(gens, root, docsDir, false)
}

// Update rewrites every generated block of the pages under docsDir.
func Update(gens map[string]Generator, root, docsDir string) error {
	return walk(gens, root, docsDir, true)
}

func walk(gens map[string]Generator, root, docsDir string, write bool) error {
	var errs []error
	used := make(map[string]bool)
	err := filepath.WalkDir(docsDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		blocks, err := FindBlocks(path, data)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		var out bytes.Buffer
		last := 0
		for _, b := range blocks {
			used[b.Name] = true
			want, err := render(gens, root, b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if got := string(data[b.Start:b.End]); got != want && !write {
				errs = append(errs, fmt.Errorf("%s:%d: the generated block %s disagrees with the code; run %s and review the change:\n%s",
					path, b.Line, b.Name, UpdateCommand, lineDiff(got, want)))
			}
			out.Write(data[last:b.Start])
			out.WriteString(want)
			last = b.End
		}
		out.Write(data[last:])
		if write && !bytes.Equal(out.Bytes(), data) {
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	names := make([]string, 0, len(gens))
	for n := range gens {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !used[n] {
			errs = append(errs, fmt.Errorf("no page under %s shows the generated block %s: add <!-- BEGIN GENERATED %s --> and <!-- END GENERATED %s --> where it belongs, then run %s", docsDir, n, n, n, UpdateCommand))
		}
	}
	return errors.Join(errs...)
}

// lineDiff lists the lines only in got (-) and only in want (+), in order:
// enough to see which rows of a table changed.
func lineDiff(got, want string) string {
	in := func(lines []string) map[string]int {
		m := make(map[string]int)
		for _, l := range lines {
			m[l]++
		}
		return m
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	gs, ws := in(g), in(w)
	var b strings.Builder
	for _, l := range g {
		if ws[l] == 0 {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	for _, l := range w {
		if gs[l] == 0 {
			fmt.Fprintf(&b, "  + %s\n", l)
		}
	}
	if b.Len() == 0 {
		return "  (the same lines in another order or spacing)\n"
	}
	return b.String()
}
