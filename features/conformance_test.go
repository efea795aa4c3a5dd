// Package features holds the conformance scenarios, written from the
// operator docs, and their step definitions. TestConformance runs them
// against a stack and writes cucumber JSON, JUnit XML and the results
// manifest under the build directory.
//
//	go test ./features -run TestConformance -args -stack local -build-dir build/conformance
//
// -stack (or $STACK) is local, containers or auto (the default): containers
// when a Docker engine answers, else local.
package features

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gherkin "github.com/cucumber/gherkin/go/v42"
	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

var (
	stackFlag   = flag.String("stack", envOr("STACK", "auto"), "the stack to run against: local (in-process), containers (Docker), or auto: containers when a Docker engine answers, else local")
	buildDir    = flag.String("build-dir", envOr("BUILD_DIR", "../build/conformance"), "where reports and the results manifest go")
	tagsFlag    = flag.String("tags", os.Getenv("TAGS"), "a godog tag expression selecting scenarios")
	commandFlag = flag.String("command", "", "the command line to record as the one that ran the scenarios (make conformance passes its own); default: this go test line")
	realFlag    = flag.String("require-real", "", "comma-separated parts the run must take from the machine instead of embedding them: "+stack.PartRedis+" (make test requires it)")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const docsDir = "../docs"

func TestConformance(t *testing.T) {
	docs, err := docexamples.Load(docsDir)
	if err != nil {
		t.Fatalf("loading the docs' examples: %v", err)
	}
	mode, why, err := chooseStack(*stackFlag)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(*buildDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("conformance: stack %s (%s; %s); reports in %s\n", mode, stackDescription(mode), why, dir)
	if *realFlag != "" {
		if err := stack.RequireReal(strings.Split(*realFlag, ",")...); err != nil {
			t.Fatal(err)
		}
	}
	if mode == "containers" {
		stack.RecordPart(stack.PartDocker, stack.Real, why)
	} else {
		stack.RecordPart(stack.PartDocker, stack.Embedded, "the in-process stack stands in for containers: "+why)
	}
	command := *commandFlag
	if command == "" {
		// This go test line: its -run pattern and the suite's own flags.
		run, args := "", []string{}
		for _, a := range os.Args[1:] {
			if v, ok := strings.CutPrefix(a, "-test.run="); ok {
				run = v
			} else if !strings.HasPrefix(a, "-test.") {
				args = append(args, a)
			}
		}
		command = strings.TrimSpace(fmt.Sprintf("go test ./features -run '%s' -args %s", run, strings.Join(args, " ")))
	}

	// A scenario that only one stack can run is tagged for it; the other
	// stack leaves it out through the tag filter, and says so. What the
	// container stack leaves out then runs on the in-process stack, so that
	// one run verifies every example either way.
	rec := &results.Recorder{}
	status := 0
	switch mode {
	case "local":
		tags, left := withoutTag(*tagsFlag, containersOnlyTag)
		if left > 0 {
			fmt.Printf("conformance: the local stack leaves out %d scenario(s) tagged %s: they run real containers (STACK=containers runs them)\n", left, containersOnlyTag)
		}
		status = runSuite(t, docs, rec, command, mode, tags, left, containersOnlyTag, dir, "")
	case "containers":
		newStack, cleanup, err := stackFactory(mode)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := cleanup(); err != nil {
				t.Errorf("removing the %s stack: %v", mode, err)
			}
		}()
		tags, left := withoutTag(*tagsFlag, localOnlyTag)
		status = runSuiteOn(t, docs, rec, newStack, command, mode, tags, left, localOnlyTag, dir, "")
		if left > 0 {
			fmt.Printf("conformance: the container stack left out %d scenario(s) tagged %s: they need the in-process stack, which runs them now\n", left, localOnlyTag)
			if st := runSuite(t, docs, rec, command, "local", onlyTag(*tagsFlag, localOnlyTag), 0, "", dir, "-local"); st != 0 {
				status = st
			}
		}
	}

	m := rec.Manifest(manifestParts(), func(id string) string {
		if e, err := docs.Get(id); err == nil {
			return e.Page
		}
		return ""
	}, "..")
	if err := m.Write(dir); err != nil {
		t.Errorf("writing the results manifest: %v", err)
	}
	fmt.Println("conformance: " + m.PartsLine())
	fmt.Println(m.Summary())
	if status != 0 {
		t.Fail()
	}
	if m.Provenance.Passed+m.Provenance.Failed == 0 {
		t.Error("no scenario ran: a run that verifies nothing is not a pass")
	}
}

// manifestParts is how this run provided each part, for the manifest.
func manifestParts() []results.Part {
	var out []results.Part
	for _, p := range stack.Parts() {
		out = append(out, results.Part{Name: p.Name, Kind: p.Kind, Detail: p.Detail})
	}
	return out
}

// runSuite runs the scenarios tags selects on a fresh stack of mode per
// scenario, recording them as one run.
func runSuite(t *testing.T, docs *docexamples.Set, rec *results.Recorder, command, mode, tags string, left int, leftTag, dir, suffix string) int {
	newStack, cleanup, err := stackFactory(mode)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cleanup(); err != nil {
			t.Errorf("removing the %s stack: %v", mode, err)
		}
	}()
	return runSuiteOn(t, docs, rec, newStack, command, mode, tags, left, leftTag, dir, suffix)
}

// runSuiteOn runs the scenarios tags selects, each on a stack from
// newStack; the reports get suffix in their names.
func runSuiteOn(t *testing.T, docs *docexamples.Set, rec *results.Recorder, newStack func() (stack.Stack, error), command, mode, tags string, left int, leftTag, dir, suffix string) int {
	rec.StartRun(command, mode, *tagsFlag, tags)
	if left > 0 {
		rec.LeaveOut(left, leftTag)
	}
	suite := godog.TestSuite{
		Name: "conformance",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			initScenario(sc, docs, newStack, rec)
		},
		Options: &godog.Options{
			Format:      "pretty,cucumber:" + filepath.Join(dir, "cucumber"+suffix+".json") + ",junit:" + filepath.Join(dir, "junit"+suffix+".xml"),
			Paths:       []string{"."},
			Tags:        tags,
			Strict:      true,
			NoColors:    true,
			Concurrency: 1,
			TestingT:    t,
		},
	}
	return suite.Run()
}

func stackDescription(mode string) string {
	switch mode {
	case "local":
		return "in-process: every component on 127.0.0.1, names mapped by the harness"
	case "containers":
		return "Docker: a FROM scratch image per component on a network of its own, ports published on 127.0.0.1"
	}
	return mode
}

// chooseStack resolves the -stack flag: auto picks containers when a Docker
// engine answers, else local, and says why; containers fails, never skips,
// when no engine answers.
func chooseStack(flagValue string) (mode, why string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch flagValue {
	case "local":
		return "local", "chosen with STACK=local", nil
	case "containers":
		engine, err := stack.DockerEngine(ctx)
		if err != nil {
			return "", "", fmt.Errorf("STACK=containers, but no Docker engine answers: %v", err)
		}
		return "containers", "chosen with STACK=containers; " + engine, nil
	case "auto", "":
		engine, err := stack.DockerEngine(ctx)
		if err != nil {
			return "local", fmt.Sprintf("auto: no Docker engine answers (%v)", err), nil
		}
		return "containers", "auto: a Docker engine answers: " + engine, nil
	}
	return "", "", fmt.Errorf("unknown stack %q: use local, containers or auto", flagValue)
}

// stackFactory returns how to start one scenario's stack, and how to
// remove what the run shares at its end.
func stackFactory(mode string) (func() (stack.Stack, error), func() error, error) {
	switch mode {
	case "local":
		return func() (stack.Stack, error) { return stack.NewLocal() }, func() error { return nil }, nil
	case "containers":
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		info, err := stack.PrepareContainers(ctx)
		if err != nil {
			return nil, nil, err
		}
		fmt.Printf("conformance: %s\n", info)
		cleanup := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return stack.CleanupContainers(ctx)
		}
		return func() (stack.Stack, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return stack.NewContainers(ctx)
		}, cleanup, nil
	}
	return nil, nil, fmt.Errorf("unknown stack %q: use local, containers or auto", mode)
}

// containersOnlyTag marks scenarios that only make sense on the container
// stack, such as running the docs' docker run line; localOnlyTag those
// that need what only the in-process stack offers (proxy replicas on one
// Redis).
const (
	containersOnlyTag = "@containers"
	localOnlyTag      = "@local"
)

// withoutTag adds "not tag" to a godog tag expression (comma-separated
// alternatives of &&-joined tags) and counts the scenarios it leaves out
// of those the expression selected.
func withoutTag(expr, tag string) (string, int) {
	var terms []string
	for _, term := range strings.Split(expr, ",") {
		if term = strings.TrimSpace(term); term != "" {
			terms = append(terms, term+" && ~"+tag)
		}
	}
	out := "~" + tag
	if len(terms) > 0 {
		out = strings.Join(terms, ",")
	}
	left := 0
	for _, tags := range scenarioTags(".") {
		if results.MatchTags(expr, tags) && !results.MatchTags(out, tags) {
			left++
		}
	}
	return out, left
}

// onlyTag narrows a godog tag expression to the scenarios tagged tag.
func onlyTag(expr, tag string) string {
	var terms []string
	for _, term := range strings.Split(expr, ",") {
		if term = strings.TrimSpace(term); term != "" {
			terms = append(terms, term+" && "+tag)
		}
	}
	if len(terms) == 0 {
		return tag
	}
	return strings.Join(terms, ",")
}

// scenarioTags lists the tags of every scenario (every example row of an
// outline) of the feature files in dir.
func scenarioTags(dir string) [][]string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.feature"))
	var out [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n := 0
		newID := func() string { n++; return strconv.Itoa(n) }
		doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(b), newID)
		if err != nil {
			continue
		}
		for _, p := range gherkin.Pickles(*doc, f, newID) {
			var tags []string
			for _, tg := range p.Tags {
				tags = append(tags, tg.Name)
			}
			out = append(out, tags)
		}
	}
	return out
}

// initScenario wires one scenario: a fresh world and stack, the steps, and
// the recording of its result.
func initScenario(sc *godog.ScenarioContext, docs *docexamples.Set, newStack func() (stack.Stack, error), rec *results.Recorder) {
	w := &world{docs: docs, newStack: newStack}
	var steps []results.Step
	var started time.Time

	sc.Before(func(ctx context.Context, _ *godog.Scenario) (context.Context, error) {
		started = time.Now()
		return ctx, nil
	})
	sc.StepContext().After(func(ctx context.Context, st *godog.Step, status godog.StepResultStatus, err error) (context.Context, error) {
		s := results.Step{Text: st.Text, Status: status.String()}
		if err != nil {
			s.Error = err.Error()
		}
		steps = append(steps, s)
		return ctx, nil
	})
	sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
		err = errors.Join(err, w.checkLogCatalog(), w.close())
		r := results.Scenario{
			Name:     s.Name,
			Feature:  filepath.ToSlash(filepath.Join("features", filepath.Base(s.Uri))),
			Status:   results.Passed,
			Examples: w.examples,
			Steps:    steps,
			Seconds:  time.Since(started).Seconds(),
		}
		for _, tg := range s.Tags {
			r.Tags = append(r.Tags, tg.Name)
		}
		if r.Examples == nil {
			r.Examples = []string{}
		}
		if err != nil {
			r.Status, r.Error = results.Failed, err.Error()
		}
		for _, st := range steps {
			if st.Status != "passed" && r.Status == results.Passed {
				r.Status = results.Failed
			}
		}
		if len(steps) == 0 {
			r.Status = results.Failed
		}
		rec.Add(r)
		return ctx, err
	})
	w.register(sc)
}

// scenarioCtx bounds every step.
func stepContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 60*time.Second)
}

var _ = strings.TrimSpace
