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
}

// Provenance says what was tested and how to reproduce it.
type Provenance struct {
	Commit    string    `json:"commit"`
	Dirty     bool      `json:"dirty"`
	Stack     string    `json:"stack"`
	GoVersion string    `json:"go_version"`
	Time      time.Time `json:"time"`
	Passed    int       `json:"passed"`
	Failed    int       `json:"failed"`
	Command   string    `json:"command"`
}

// Manifest is the whole file.
type Manifest struct {
	Provenance Provenance               `json:"provenance"`
	Examples   map[string]ExampleResult `json:"examples"`
	Scenarios  []Scenario               `json:"scenarios"`
}

// Recorder collects scenarios as they finish. It is safe for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	scenarios []Scenario
}

// Add records a finished scenario.
func (r *Recorder) Add(s Scenario) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scenarios = append(r.scenarios, s)
}

// Manifest builds the manifest. pageOf maps an example id to its page.
func (r *Recorder) Manifest(stack string, pageOf func(id string) string, repoDir string) *Manifest {
	r.mu.Lock()
	scs := append([]Scenario(nil), r.scenarios...)
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
			e.Scenarios = append(e.Scenarios, ScenarioRef{Name: s.Name, Feature: s.Feature, Status: s.Status})
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
	m.Provenance.Stack = stack
	m.Provenance.GoVersion = runtime.Version()
	m.Provenance.Time = time.Now().UTC().Truncate(time.Second)
	m.Provenance.Commit, m.Provenance.Dirty = GitState(repoDir)
	m.Provenance.Command = "make conformance STACK=" + stack
	return m
}

// Summary is the closing line of a run.
func (m *Manifest) Summary() string {
	return fmt.Sprintf("%d passed, %d failed", m.Provenance.Passed, m.Provenance.Failed)
}

// Write writes the manifest as manifest.json into dir, and the summary line
// as summary.txt.
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
	return os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(m.Summary()+"\n"), 0o644)
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

// Merge joins the manifests of runs of the same commit on several stacks
// into one: a scenario that ran on several stacks passed only if it passed
// on each, and an example's status is recomputed from the merged
// scenarios. The provenance names every stack, joined with "+".
func Merge(ms ...*Manifest) *Manifest {
	if len(ms) == 1 {
		return ms[0]
	}
	out := &Manifest{Examples: make(map[string]ExampleResult)}
	index := map[string]int{}
	var stacks []string
	pages := map[string]string{}
	for _, m := range ms {
		stacks = append(stacks, m.Provenance.Stack)
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
			e.Scenarios = append(e.Scenarios, ScenarioRef{Name: s.Name, Feature: s.Feature, Status: s.Status})
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
	out.Provenance.Stack = strings.Join(stacks, "+")
	out.Provenance.Command = "make test"
	return out
}
