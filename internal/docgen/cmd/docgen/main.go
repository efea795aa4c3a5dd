// Command docgen keeps the generated parts of the docs in step with the code
// and prepares the docs site's generated inputs.
//
//	docgen tables            rewrite the generated tables of docs/ (make docs)
//	docgen tables -check     fail when a generated table disagrees with the code
//	docgen site              write site/generated from the results manifest, the
//	                         feature files, the official MCP conformance suite's
//	                         results and the diagrams' sources (make site)
//
// Run it from the repository root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/docgen"
	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "tables":
		err = tables(os.Args[2:])
	case "site":
		err = site(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage:
  docgen tables [-check]   rewrite (or check) the generated tables of docs/
  docgen site [flags]      write the site's generated inputs; -h lists the flags
`)
	os.Exit(2)
}

func tables(args []string) error {
	fs := flag.NewFlagSet("tables", flag.ExitOnError)
	check := fs.Bool("check", false, "only check: fail when a generated table disagrees with the code")
	docs := fs.String("docs", "docs", "the docs `directory`")
	_ = fs.Parse(args)
	if *check {
		return docgen.Check(docgen.Generators, ".", *docs)
	}
	return docgen.Update(docgen.Generators, ".", *docs)
}

func site(args []string) error {
	fs := flag.NewFlagSet("site", flag.ExitOnError)
	manifest := fs.String("manifest", filepath.Join("build", "conformance", "manifest.json"), "the results `file` of make conformance; several, comma-separated, are merged (runs on several stacks)")
	docsDir := fs.String("docs", "docs", "the docs `directory`")
	features := fs.String("features", "features", "the feature files' `directory`")
	out := fs.String("out", filepath.Join("site", "generated"), "the `directory` to write (emptied first)")
	suite := fs.String("mcp-conformance", filepath.Join("build", "mcp-conformance", mcpconformance.ReportFile), "the results `file` of make mcp-conformance (the official MCP conformance suite); when it is missing the page says so")
	d2 := fs.String("d2", "go -C site tool d2", "the `command` that renders a D2 file to SVG; the source and target paths are appended")
	_ = fs.Parse(args)

	var ms []*results.Manifest
	var sources []string
	for _, path := range strings.Split(*manifest, ",") {
		m, err := results.Read(path)
		if err != nil {
			return fmt.Errorf("%w (run make conformance first)", err)
		}
		ms = append(ms, m)
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		sources = append(sources, abs)
	}
	m := results.Merge(ms...)
	docs, err := docexamples.Load(*docsDir)
	if err != nil {
		return err
	}
	// The manifest names feature files as features/NAME.feature, from the
	// repository root, wherever -features points.
	feats, err := docgen.LoadFeatures(*features, "features")
	if err != nil {
		return err
	}
	sum, err := docgen.WriteSite(*out, docgen.SiteInput{Manifest: m, Docs: docs, DocsDir: *docsDir, Features: feats, Sources: sources})
	if err != nil {
		return err
	}
	rep, err := mcpconformance.ReadReport(*suite)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Printf("docgen: note: no results of the official MCP conformance suite in %s; run make mcp-conformance for them\n", *suite)
		rep = nil
	case err != nil:
		return err
	case len(rep.Legs) == 0:
		// A results file of the harness before it had legs.
		fmt.Printf("docgen: note: %s has no legs (an older run); run make mcp-conformance again for results the page can show\n", *suite)
		rep = nil
	}
	if err := docgen.WriteMCPConformance(*out, rep); err != nil {
		return err
	}
	if rep != nil {
		for _, l := range rep.Legs {
			for _, c := range l.Clients {
				fmt.Printf("docgen: official MCP conformance suite %s at %.7s: %s\n", rep.SuiteVersion, rep.Commit, c.ClosingLine(l.Name))
			}
		}
	}
	diagrams, err := docgen.RenderDiagrams(filepath.Join(*docsDir, "diagrams"), filepath.Join(*out, "assets", "diagrams"), func(src, dst string) error {
		return runD2(*d2, src, dst)
	})
	if err != nil {
		return err
	}
	p := m.Provenance
	dirty := ""
	if p.Dirty {
		dirty = " (uncommitted changes)"
	}
	fmt.Printf("docgen: %d of %d documented examples verified, by %d scenarios of %d feature files on the %s stack at %.7s%s; %d diagrams\n",
		sum.Verified, sum.Examples, sum.Scenarios, sum.Features, p.Stack, p.Commit, dirty, len(diagrams))
	fmt.Printf("docgen: results of %s\n", p.Command)
	for _, l := range sum.LeftOut {
		fmt.Printf("docgen: published unverified: %s\n", l)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && strings.TrimSpace(string(head)) != p.Commit {
		fmt.Printf("docgen: note: the results are from commit %.7s, HEAD is %.7s; run make conformance for fresh ones\n", p.Commit, head)
	}
	return nil
}

// runD2 renders src to dst. Paths are made absolute because the command may
// change its directory (go -C site).
func runD2(command, src, dst string) error {
	absSrc, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	absDst, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	argv := append(strings.Fields(command), "--pad=20", absSrc, absDst)
	cmd := exec.Command(argv[0], argv[1:]...)
	// d2 reports progress on stderr; keep it only when it fails.
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, outb)
	}
	return nil
}
