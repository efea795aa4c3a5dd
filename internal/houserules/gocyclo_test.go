package houserules

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fzipp/gocyclo"
)

// maxComplexity is the most cyclomatic complexity a function may have in
// the packages cycloDirs names: past it, a function is several jobs that
// want names of their own (a helper per step, a table of checks).
const maxComplexity = 25

// cycloDirs are the trees held to maxComplexity, test functions included.
var cycloDirs = []string{"cmd", "mockas", "mockmcp", "proxy"}

// cycloAllowed are the functions over maxComplexity that are known and
// waiting to be split, as "path: function" (gocyclo's names); none now. An
// entry that is no longer over the limit fails the test until it is
// removed, so the list only shrinks.
var cycloAllowed = []string{}

// TestFunctionsAreSmall fails on a function of cycloDirs over
// maxComplexity that cycloAllowed does not name, and on an entry of
// cycloAllowed that is not over it.
func TestFunctionsAreSmall(t *testing.T) {
	var paths []string
	for _, d := range cycloDirs {
		paths = append(paths, filepath.Join(root, d))
	}
	stats := gocyclo.Analyze(paths, nil)
	if len(stats) < 100 {
		t.Fatalf("gocyclo found %d functions in %s: the paths are wrong", len(stats), strings.Join(cycloDirs, ", "))
	}
	for _, p := range cycloProblems(stats, root, cycloAllowed) {
		t.Error(p)
	}
}

// cycloProblems lists the functions of stats over maxComplexity that
// allowed does not name, then the entries of allowed that no function
// over it matches. Paths are relative to root.
func cycloProblems(stats gocyclo.Stats, root string, allowed []string) []string {
	var problems []string
	over := map[string]bool{}
	for _, s := range stats.SortAndFilter(-1, maxComplexity) {
		path, err := filepath.Rel(root, s.Pos.Filename)
		if err != nil {
			path = s.Pos.Filename
		}
		key := filepath.ToSlash(path) + ": " + s.FuncName
		over[key] = true
		if !slices.Contains(allowed, key) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s has cyclomatic complexity %d, over %d: split it by job", filepath.ToSlash(path), s.Pos.Line, s.FuncName, s.Complexity, maxComplexity))
		}
	}
	for _, a := range allowed {
		if !over[a] {
			problems = append(problems, fmt.Sprintf("cycloAllowed names %q, which is not over %d (any more): remove the entry", a, maxComplexity))
		}
	}
	return problems
}

// The check fails on a function over the limit that is not allowed and on
// an allowed one that is no longer over it, and passes otherwise.
func TestCycloProblemsCanFail(t *testing.T) {
	dir := t.TempDir()
	// big has 26: one for the function, 25 for the ifs.
	var big strings.Builder
	big.WriteString("package p\n\nfunc big(x int) int {\n")
	for i := range maxComplexity {
		fmt.Fprintf(&big, "\tif x == %d {\n\t\treturn %d\n\t}\n", i, i)
	}
	big.WriteString("\treturn -1\n}\n\nfunc small() int { return 0 }\n")
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(big.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	stats := gocyclo.Analyze([]string{dir}, nil)

	got := cycloProblems(stats, dir, nil)
	want := []string{"p.go:3: big has cyclomatic complexity 26, over 25: split it by job"}
	if !slices.Equal(got, want) {
		t.Errorf("not allowed: %q, want %q", got, want)
	}
	got = cycloProblems(stats, dir, []string{"p.go: big", "p.go: small"})
	want = []string{`cycloAllowed names "p.go: small", which is not over 25 (any more): remove the entry`}
	if !slices.Equal(got, want) {
		t.Errorf("allowed: %q, want %q", got, want)
	}
	if got := cycloProblems(stats, dir, []string{"p.go: big"}); len(got) != 0 {
		t.Errorf("exactly allowed: %q", got)
	}
}
