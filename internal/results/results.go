// Package results records what a conformance run verified and writes the
// results manifest: per example id, the scenarios that ran it and their
// status; per scenario, its status and steps; and the provenance of the
// run (commit, dirty tree, stack, Go version, time, counts).
//
// The site build reads the manifest to badge each example, and refuses an
// example that no passing scenario ran.
package results

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status values.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
)

// Step is one step of a scenario.
type Step struct {
	Text   string `json:"text"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Scenario is one scenario's result.
type Scenario struct {
	Name     string   `json:"name"`
	Feature  string   `json:"feature"` // the feature file, relative to the repository
	Tags     []string `json:"tags"`
	Status   string   `json:"status"`
	Examples []string `json:"examples"`
	Steps    []Step   `json:"steps"`
	Error    string   `json:"error,omitempty"`
	Seconds  float64  `json:"seconds"`
	// Stack is the stack the scenario ran on (set by Recorder.Manifest).
	Stack string `json:"stack"`
}

// ExampleResult is what verified one documented example.
type ExampleResult struct {
	Page      string        `json:"page"`
	Status    string        `json:"status"` // passed when every scenario that ran it passed
	Scenarios []ScenarioRef `json:"scenarios"`
}

// ScenarioRef names a scenario from an example.
type ScenarioRef struct {
	Name    string `json:"name"`
	Feature string `json:"feature"`
	Status  string `json:"status"`
	Stack   string `json:"stack,omitempty"`
}

// Provenance says what was tested and how to reproduce it. A manifest of
// one run has one entry in Runs; a merged one, an entry per run it joins.
type Provenance struct {
	Commit    string    `json:"commit"`
	Dirty     bool      `json:"dirty"`
	Stack     string    `json:"stack"` // every stack of Runs, joined with "+"
	GoVersion string    `json:"go_version"`
	Time      time.Time `json:"time"`
	Passed    int       `json:"passed"`
	Failed    int       `json:"failed"`
	// Command is the command that ran the scenarios (every distinct one
	// of Runs, joined with " && ").
	Command string `json:"command"`
	Runs    []Run  `json:"runs"`
	// Parts says which parts of the stack were the machine's own programs
	// and which were embedded in their place.
	Parts []Part `json:"parts,omitempty"`
}

// Run is one suite run: the scenarios one tag filter selected on one stack.
type Run struct {
	Command string `json:"command"`
	Stack   string `json:"stack"`
	// Filter is the tag filter the command asked for ("" for every
	// scenario), with the ~TAG terms make conformance adds for what the
	// machine lacks (~@real-servers when Dex and Hydra are not built); Tags
	// is the one the run applied, as godog took it, which also leaves out
	// what the stack cannot run.
	Filter string `json:"filter"`
	Tags   string `json:"tags"`
	// LeftOut counts scenarios the filter left out because this stack
	// cannot run them; LeftOutTag is their tag.
	LeftOut    int       `json:"left_out,omitempty"`
	LeftOutTag string    `json:"left_out_tag,omitempty"`
	Commit     string    `json:"commit"`
	Dirty      bool      `json:"dirty"`
	Time       time.Time `json:"time"`
	Passed     int       `json:"passed"`
	Failed     int       `json:"failed"`
}

// Part is how a run provided a part of the stack that Go does not build:
// "real" (the machine's program) or "embedded" (a stand-in in process).
type Part struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Manifest is the whole file.
type Manifest struct {
	Provenance Provenance               `json:"provenance"`
	Examples   map[string]ExampleResult `json:"examples"`
	Scenarios  []Scenario               `json:"scenarios"`
}

// Recorder collects scenarios as they finish, run by run. It is safe for
// concurrent use.
type Recorder struct {
	mu        sync.Mutex
	scenarios []Scenario
	runs      []Run
}

// StartRun begins a run: the scenarios added until the next StartRun ran
// on stack, selected by tags, which narrows the filter the command asked
// for. Command is the command line that started
// the whole suite.
func (r *Recorder) StartRun(command, stack, filter, tags string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, Run{Command: command, Stack: stack, Filter: filter, Tags: tags})
}

// LeaveOut records that the current run's filter left out n scenarios
// tagged tag, which its stack cannot run.
func (r *Recorder) LeaveOut(n int, tag string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.runs) > 0 {
		r.runs[len(r.runs)-1].LeftOut, r.runs[len(r.runs)-1].LeftOutTag = n, tag
	}
}

// Add records a finished scenario of the current run.
func (r *Recorder) Add(s Scenario) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.runs) == 0 {
		r.runs = append(r.runs, Run{})
	}
	run := &r.runs[len(r.runs)-1]
	s.Stack = run.Stack
	if s.Status == Passed {
		run.Passed++
	} else {
		run.Failed++
	}
	r.scenarios = append(r.scenarios, s)
}

// Manifest builds the manifest. pageOf maps an example id to its page.
func (r *Recorder) Manifest(parts []Part, pageOf func(id string) string, repoDir string) *Manifest {
	r.mu.Lock()
	scs := append([]Scenario(nil), r.scenarios...)
	runs := append([]Run(nil), r.runs...)
	r.mu.Unlock()
	m := &Manifest{Examples: make(map[string]ExampleResult), Scenarios: scs}
	for _, s := range scs {
		if s.Status == Passed {
			m.Provenance.Passed++
		} else {
			m.Provenance.Failed++
		}
		for _, id := range s.Examples {
			e := m.Examples[id]
			e.Page = pageOf(id)
			e.Scenarios = append(e.Scenarios, ScenarioRef{Name: s.Name, Feature: s.Feature, Status: s.Status, Stack: s.Stack})
			m.Examples[id] = e
		}
	}
	for id, e := range m.Examples {
		e.Status = Passed
		for _, s := range e.Scenarios {
			if s.Status != Passed {
				e.Status = Failed
			}
		}
		sort.Slice(e.Scenarios, func(i, j int) bool { return e.Scenarios[i].Name < e.Scenarios[j].Name })
		m.Examples[id] = e
	}
	m.Provenance.GoVersion = runtime.Version()
	m.Provenance.Time = time.Now().UTC().Truncate(time.Second)
	m.Provenance.Commit, m.Provenance.Dirty = GitState(repoDir)
	m.Provenance.Parts = parts
	for i := range runs {
		runs[i].Commit, runs[i].Dirty, runs[i].Time = m.Provenance.Commit, m.Provenance.Dirty, m.Provenance.Time
	}
	m.Provenance.Runs = runs
	m.Provenance.Stack, m.Provenance.Command = joinRuns(runs)
	return m
}

// runsOf is m's runs; a manifest written before runs were recorded is
// one run described by its provenance.
func runsOf(m *Manifest) []Run {
	if len(m.Provenance.Runs) > 0 {
		return m.Provenance.Runs
	}
	p := m.Provenance
	return []Run{{Command: p.Command, Stack: p.Stack, Commit: p.Commit, Dirty: p.Dirty, Time: p.Time, Passed: p.Passed, Failed: p.Failed}}
}

// joinRuns names the stacks and the distinct commands of runs.
func joinRuns(runs []Run) (stacks, commands string) {
	var ss, cs []string
	for _, r := range runs {
		if !slices.Contains(ss, r.Stack) {
			ss = append(ss, r.Stack)
		}
		if !slices.Contains(cs, r.Command) {
			cs = append(cs, r.Command)
		}
	}
	return strings.Join(ss, "+"), strings.Join(cs, " && ")
}

// Summary is the closing line of a run.
func (m *Manifest) Summary() string {
	return fmt.Sprintf("%d passed, %d failed", m.Provenance.Passed, m.Provenance.Failed)
}

// PartsLine says which parts of the stack were real and which embedded.
func (m *Manifest) PartsLine() string {
	var realParts, embedded []string
	for _, p := range m.Provenance.Parts {
		s := p.Name + " (" + p.Detail + ")"
		if p.Kind == "real" {
			realParts = append(realParts, s)
		} else {
			embedded = append(embedded, s)
		}
	}
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, "; ")
	}
	return "parts: real: " + none(realParts) + "; embedded: " + none(embedded)
}

// Write writes the manifest as manifest.json into dir, and summary.txt:
// the parts line, then the summary line.
func (m *Manifest) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(m.PartsLine()+"\n"+m.Summary()+"\n"), 0o644)
}

// Read reads a manifest written by Write.
func Read(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// GitState returns the commit of the repository at dir and whether its
// tree has changes; "unknown" outside a repository.
func GitState(dir string) (string, bool) {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	status, _ := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(status))) > 0
}

// Merge joins the manifests of runs on several stacks into one: a scenario
// that ran on several stacks passed only if it passed on each, and an
// example's status is recomputed from the merged scenarios. The provenance
// keeps every run of every manifest (its command, stack, tag filter and
// commit); its Commit is the newest manifest's.
func Merge(ms ...*Manifest) *Manifest {
	if len(ms) == 1 {
		m := ms[0]
		m.Provenance.Runs = runsOf(m)
		return m
	}
	out := &Manifest{Examples: make(map[string]ExampleResult)}
	index := map[string]int{}
	var runs []Run
	var parts []Part
	pages := map[string]string{}
	for _, m := range ms {
		runs = append(runs, runsOf(m)...)
		for _, p := range m.Provenance.Parts {
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
		if out.Provenance.Time.Before(m.Provenance.Time) {
			p := out.Provenance
			out.Provenance = m.Provenance
			out.Provenance.Passed, out.Provenance.Failed = p.Passed, p.Failed
		}
		out.Provenance.Dirty = out.Provenance.Dirty || m.Provenance.Dirty
		for id, e := range m.Examples {
			pages[id] = e.Page
		}
		// Rows of a scenario outline share a name: the nth scenario of a
		// name in one run is matched with the nth of the other.
		nth := map[string]int{}
		for _, s := range m.Scenarios {
			base := s.Feature + "\x00" + s.Name
			k := fmt.Sprintf("%s\x00%d", base, nth[base])
			nth[base]++
			i, seen := index[k]
			if !seen {
				index[k] = len(out.Scenarios)
				out.Scenarios = append(out.Scenarios, s)
				continue
			}
			if s.Status != Passed {
				out.Scenarios[i].Status = s.Status
				out.Scenarios[i].Error = s.Error
			}
		}
	}
	out.Provenance.Passed, out.Provenance.Failed = 0, 0
	for _, s := range out.Scenarios {
		if s.Status == Passed {
			out.Provenance.Passed++
		} else {
			out.Provenance.Failed++
		}
		for _, id := range s.Examples {
			e := out.Examples[id]
			e.Page = pages[id]
			e.Scenarios = append(e.Scenarios, ScenarioRef{Name: s.Name, Feature: s.Feature, Status: s.Status, Stack: s.Stack})
			out.Examples[id] = e
		}
	}
	for id, e := range out.Examples {
		e.Status = Passed
		for _, s := range e.Scenarios {
			if s.Status != Passed {
				e.Status = Failed
			}
		}
		sort.Slice(e.Scenarios, func(i, j int) bool { return e.Scenarios[i].Name < e.Scenarios[j].Name })
		out.Examples[id] = e
	}
	out.Provenance.Runs, out.Provenance.Parts = runs, parts
	out.Provenance.Stack, out.Provenance.Command = joinRuns(runs)
	return out
}

// MatchTags applies a godog tag expression (comma-separated alternatives
// of &&-joined tags, ~ negating one) to a scenario's tags, as godog does.
func MatchTags(expr string, tags []string) bool {
	if strings.TrimSpace(expr) == "" {
		return true
	}
	for _, term := range strings.Split(expr, ",") {
		ok := true
		for _, tag := range strings.Split(term, "&&") {
			tag = strings.TrimSpace(tag)
			want := !strings.HasPrefix(tag, "~")
			tag = "@" + strings.TrimPrefix(strings.TrimPrefix(tag, "~"), "@")
			if slices.Contains(tags, tag) != want {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}
