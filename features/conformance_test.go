// Package features holds the conformance scenarios, written from the
// operator docs, and their step definitions. TestConformance runs them
// against a stack and writes cucumber JSON, JUnit XML and the results
// manifest under the build directory.
//
//	go test ./features -run TestConformance -args -stack local -build-dir build/conformance
package features

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

var (
	stackFlag = flag.String("stack", envOr("STACK", "local"), "the stack to run against: local (in-process)")
	buildDir  = flag.String("build-dir", envOr("BUILD_DIR", "../build/conformance"), "where reports and the results manifest go")
	tagsFlag  = flag.String("tags", os.Getenv("TAGS"), "a godog tag expression selecting scenarios")
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
	newStack, err := stackFactory(*stackFlag)
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
	fmt.Printf("conformance: stack %s (%s); reports in %s\n", *stackFlag, stackDescription(*stackFlag), dir)

	rec := &results.Recorder{}
	suite := godog.TestSuite{
		Name: "conformance",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			initScenario(sc, docs, newStack, rec)
		},
		Options: &godog.Options{
			Format:      "pretty,cucumber:" + filepath.Join(dir, "cucumber.json") + ",junit:" + filepath.Join(dir, "junit.xml"),
			Paths:       []string{"."},
			Tags:        *tagsFlag,
			Strict:      true,
			NoColors:    true,
			Concurrency: 1,
			TestingT:    t,
		},
	}
	status := suite.Run()

	m := rec.Manifest(*stackFlag, func(id string) string {
		if e, err := docs.Get(id); err == nil {
			return e.Page
		}
		return ""
	}, "..")
	if err := m.Write(dir); err != nil {
		t.Errorf("writing the results manifest: %v", err)
	}
	fmt.Println(m.Summary())
	if status != 0 {
		t.Fail()
	}
	if m.Provenance.Passed+m.Provenance.Failed == 0 {
		t.Error("no scenario ran: a run that verifies nothing is not a pass")
	}
}

func stackDescription(mode string) string {
	if mode == "local" {
		return "in-process: every component on 127.0.0.1, names mapped by the harness"
	}
	return mode
}

func stackFactory(mode string) (func() (stack.Stack, error), error) {
	switch mode {
	case "local":
		return func() (stack.Stack, error) { return stack.NewLocal() }, nil
	default:
		return nil, fmt.Errorf("unknown stack %q: use local", mode)
	}
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
		err = errors.Join(err, w.close())
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
