package houserules

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
const root = "../.."

// TestREADMELayoutNamesEveryDirectory checks the README's "Layout" block
// against the tree: every top-level directory, every cmd/* and every
// internal/* directory has a line, and every line names a directory that
// exists. proxy/ is one line: its packages are listed by proxy/proxy.go's
// package comment, not here.
func TestREADMELayoutNamesEveryDirectory(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := layoutBlock(string(readme))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	dirs, err := checkedDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		return err == nil && fi.IsDir()
	}
	for _, p := range layoutProblems(layoutNames(block), dirs, exists) {
		t.Errorf("README.md, Layout: %s", p)
	}
}

// The check fails on a directory the block leaves out and on a line that
// names no directory, and passes on a block that matches.
func TestLayoutProblemsCanFail(t *testing.T) {
	block := "cmd/a/      the a binary\n" +
		"                continued description, no name\n" +
		"internal/x/ internal/y/ two on a line\n" +
		"docs/       the docs\n" +
		"gone/       a directory that was removed\n"
	names := layoutNames(block)
	if want := []string{"cmd/a", "internal/x", "internal/y", "docs", "gone"}; !slices.Equal(names, want) {
		t.Fatalf("layoutNames = %q, want %q", names, want)
	}
	tree := []string{"cmd", "cmd/a", "cmd/b", "internal/x", "internal/y", "docs"}
	exists := func(p string) bool { return slices.Contains(tree, p) }
	got := layoutProblems(names, tree, exists)
	want := []string{
		"cmd/b/ exists but has no line",
		"gone/ has a line but is not a directory",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	if got := layoutProblems(names[:4], tree[:2], exists); len(got) != 0 {
		t.Errorf("a matching block has problems: %q", got)
	}
}

// layoutBlock is the first fenced code block after the "## Layout" heading.
func layoutBlock(readme string) (string, error) {
	_, rest, ok := strings.Cut(readme, "\n## Layout\n")
	if !ok {
		return "", fmt.Errorf("no \"## Layout\" section")
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	if !ok {
		return "", fmt.Errorf("the Layout section has no code block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		return "", fmt.Errorf("the Layout section's code block is not closed")
	}
	return block, nil
}

// layoutNames are the directories the block's lines start with: the
// leading words that end in a slash, without it. A line that starts with
// white space continues the one above and names nothing.
func layoutNames(block string) []string {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		for _, word := range strings.Fields(line) {
			name, ok := strings.CutSuffix(word, "/")
			if !ok {
				break
			}
			names = append(names, name)
		}
	}
	return names
}

// checkedDirs are the directories the block must name: the top-level ones
// (but .git, and the build output .gitignore ignores at the top), and
// those directly under cmd/ and internal/.
func checkedDirs(root string) ([]string, error) {
	ignored := map[string]bool{".git": true}
	if b, err := os.ReadFile(filepath.Join(root, ".gitignore")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			// Only "/name/" lines: a directory at the top.
			if name, ok := strings.CutPrefix(strings.TrimSpace(line), "/"); ok && strings.Count(name, "/") == 1 && strings.HasSuffix(name, "/") {
				ignored[strings.TrimSuffix(name, "/")] = true
			}
		}
	}
	var dirs []string
	for _, parent := range []string{"", "cmd", "internal"} {
		entries, err := os.ReadDir(filepath.Join(root, parent))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() && (parent != "" || !ignored[e.Name()]) {
				dirs = append(dirs, path.Join(parent, e.Name()))
			}
		}
	}
	return dirs, nil
}

// layoutProblems lists every directory of dirs that names leaves out, then
// every name that exists reports is not a directory. A directory is named
// by its own line or by the lines of directories inside it (cmd/ by
// cmd/mcp-proxy/ and the others).
func layoutProblems(names, dirs []string, exists func(string) bool) []string {
	named := func(d string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return n == d || strings.HasPrefix(n, d+"/") })
	}
	var problems []string
	for _, d := range dirs {
		if !named(d) {
			problems = append(problems, d+"/ exists but has no line")
		}
	}
	for _, n := range names {
		if !exists(n) {
			problems = append(problems, n+"/ has a line but is not a directory")
		}
	}
	return problems
}
