package sitetest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/docgen"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
)

var (
	publicDir = flag.String("public", "../../site/public", "the built site (make site)")
	shotsDir  = flag.String("screenshots", "../../build/site/screenshots", "where the screenshots go")
	docsDir   = flag.String("docs", "../../docs", "the docs the site was built from")
	featDir   = flag.String("features", "../../features", "the feature files the site was built from")
	genDir    = flag.String("generated", "../../site/generated", "the site's generated inputs (make site), which name the results manifests it used")
)

// Screenshots: the page path and the file name.
var screenshots = []struct{ page, file string }{
	{"/quickstart/", "quickstart.png"},
	{"/troubleshooting/", "troubleshooting.png"},
}

// browserOptions start a headless chromium that reaches nothing but
// 127.0.0.1, with a fresh profile.
func browserOptions(t *testing.T, bin string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// No name resolves but the site's loopback address: a page that
		// tries to fetch anything from the network fails to.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
}

// chromium finds Debian's chromium; $CHROMIUM names another binary.
func chromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium is not installed: run apt-get install chromium (.ci/run installs it), or set CHROMIUM to a Chromium binary")
}

// pageReport is what one page showed the browser.
type pageReport struct {
	Title    string    `json:"title"`
	H1       int       `json:"h1"`
	IDs      []string  `json:"ids"`
	Links    []string  `json:"links"`
	Examples []example `json:"examples"`
	// Scenarios are the scenario sections of a feature page.
	Scenarios []scenarioSection `json:"scenarios"`
	// Blocks counts the code blocks outside examples.
	Blocks int `json:"blocks"`
	// Mailto are links that open a mail program: the docs have none, so
	// one is text that the renderer took for an address.
	Mailto []string `json:"mailto"`
	// Overflow are elements reaching past the page's content column
	// without a scrolling block around them; Wider says the page scrolls
	// sideways.
	Overflow []string `json:"overflow"`
	Wider    bool     `json:"wider"`
	Footer   footer   `json:"footer"`
}

// footer is the provenance the page's footer shows.
type footer struct {
	Commit string      `json:"commit"`
	Dirty  string      `json:"dirty"`
	Runs   []footerRun `json:"runs"`
	Parts  []string    `json:"parts"`
}

type footerRun struct {
	Command string `json:"command"`
	Stack   string `json:"stack"`
	Filter  string `json:"filter"`
	Passed  string `json:"passed"`
	Failed  string `json:"failed"`
	Text    string `json:"text"`
}

type example struct {
	ID        string `json:"id"`
	Badge     bool   `json:"badge"`
	LeftOut   bool   `json:"left_out"`
	Scenarios int    `json:"scenarios"`
	More      bool   `json:"more"`
	Text      string `json:"text"`
}

type scenarioSection struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Shown  string `json:"shown"`
}

const inspect = `(() => {
  const q = (s, r) => [...(r || document).querySelectorAll(s)];
  return {
    title: document.title,
    h1: q('h1').length,
    ids: q('[id]').map(e => e.id),
    links: q('a[href]').map(a => a.href).concat(q('img[src]').map(i => i.src)),
    examples: q('[data-example-id]').map(e => ({
      id: e.dataset.exampleId,
      badge: !!e.querySelector('.badge.verified'),
      left_out: !!e.querySelector('.badge.left-out'),
      scenarios: q('.badge.verified a.scenario', e).length,
      more: !!e.querySelector('.badge.verified a.more'),
      text: (e.querySelector('.badge') || {innerText: ''}).innerText.trim(),
    })),
    scenarios: q('section.scenario').map(s => ({
      id: s.id,
      status: s.dataset.status || '',
      shown: ((s.querySelector('.meta .status') || {innerText: ''}).innerText || '').trim(),
    })),
    blocks: q('pre').filter(p => !p.closest('[data-example-id]')).length,
    mailto: q('a[href^="mailto:"]').map(a => a.outerHTML.slice(0, 200)),
    overflow: (() => {
      const main = document.querySelector('main');
      if (!main) return [];
      const cs = getComputedStyle(main);
      const right = Math.min(main.getBoundingClientRect().right - parseFloat(cs.paddingRight), document.documentElement.clientWidth) + 1;
      const scrolls = e => {
        for (let a = e.parentElement; a && a !== main && a !== document.body; a = a.parentElement) {
          const o = getComputedStyle(a).overflowX;
          if (o === 'auto' || o === 'scroll') return true;
        }
        return false;
      };
      const page = document.documentElement.clientWidth + 1;
      const outside = e => !main.contains(e) && !e.contains(main);
      // A block whose text runs out of it: its own box fits, its text does not.
      const spills = e => {
        const st = getComputedStyle(e);
        return st.overflowX === 'visible' && /^(block|list-item|flow-root)$/.test(st.display) &&
          e.getBoundingClientRect().left + e.scrollWidth > right;
      };
      return q('*', main).filter(e => (e.getBoundingClientRect().right > right || spills(e)) && !scrolls(e))
        .concat(q('body *').filter(e => outside(e) && e.getBoundingClientRect().right > page && !scrolls(e)))
        .map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : '') +
          ' ' + Math.round(Math.max(e.getBoundingClientRect().right, e.getBoundingClientRect().left + e.scrollWidth) - right) + 'px too wide: ' + (e.innerText || '').trim().slice(0, 100));
    })(),
    wider: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    footer: (() => {
      const f = document.querySelector('footer .provenance');
      if (!f) return {commit: '', dirty: '', runs: [], parts: []};
      return {
        commit: f.dataset.commit, dirty: f.dataset.dirty,
        runs: q('li.run', f).map(li => ({command: li.dataset.command, stack: li.dataset.stack, filter: li.dataset.filter,
          passed: li.dataset.passed, failed: li.dataset.failed, text: li.innerText.replace(/\s+/g, ' ').trim()})),
        parts: q('.part', f).map(p => p.dataset.part + ' ' + p.dataset.kind),
      };
    })(),
  };
})()`

// waitImages waits until every image has loaded or failed.
const waitImages = `Promise.all([...document.images].map(i => i.complete ? 0 :
  new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); }))).then(() => true)`

func TestSite(t *testing.T) {
	public, err := filepath.Abs(*publicDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(public, "index.html")); err != nil {
		t.Fatalf("no built site at %s: run make site first (%v)", public, err)
	}
	bin, err := chromium()
	if err != nil {
		t.Fatal(err)
	}

	// The site, on a loopback port, recording what it could not serve.
	var mu sync.Mutex
	var notFound []string
	files := http.FileServer(http.Dir(public))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			files.ServeHTTP(rec, r)
			if rec.status >= 400 {
				mu.Lock()
				notFound = append(notFound, fmt.Sprintf("%s %d", r.URL.Path, rec.status))
				mu.Unlock()
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := browserOptions(t, bin)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// What the browser reports, attributed to the page being visited.
	var current string
	problems := make(map[string][]string)
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems[current] = append(problems[current], fmt.Sprintf(format, args...))
	}
	if err := chromedp.Do(bctx); err != nil { // start the browser
		t.Fatalf("starting %s: %v", bin, err)
	}
	err = chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				note("console %s: %s", e.Type, consoleText(e.Args))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			note("exception at %s:%d: %s", d.URL, d.LineNumber, msg)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				note("browser log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			u, err := url.Parse(e.Request.URL)
			if err == nil && u.Scheme != "data" && u.Host != ln.Addr().String() {
				note("request outside the site: %s", e.Request.URL)
			}
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				note("%s answered %d", e.Response.URL, e.Response.Status)
			}
		case *network.EventLoadingFailed:
			note("loading failed: %s (%s)", e.ErrorText, e.Type)
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every page of the site, and whatever the pages link.
	queue := htmlPages(t, public)
	seen := make(map[string]bool)
	for _, p := range queue {
		seen[p] = true
	}
	reports := make(map[string]*pageReport)
	type anchor struct{ from, page, frag string }
	var anchors []anchor
	var nonPages []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		mu.Lock()
		current = p
		mu.Unlock()
		pctx, cancelPage := context.WithTimeout(bctx, 30*time.Second)
		if err := chromedp.Do(pctx, chromedp.Navigate(base+p)); err != nil {
			cancelPage()
			t.Errorf("%s: did not load: %v", p, err)
			continue
		}
		if _, err := chromedp.Run(pctx, chromedp.Evaluate[bool](waitImages, chromedp.EvalAwaitPromise)); err != nil {
			t.Errorf("%s: waiting for images: %v", p, err)
		}
		rep, err := chromedp.Run(pctx, chromedp.Evaluate[*pageReport](inspect))
		if err != nil {
			cancelPage()
			t.Errorf("%s: inspecting: %v", p, err)
			continue
		}
		reports[p] = rep
		for _, s := range screenshots {
			if s.page == p {
				shot(t, pctx, filepath.Join(*shotsDir, s.file))
			}
		}
		cancelPage()
		for _, l := range rep.Links {
			u, err := url.Parse(l)
			if err != nil {
				t.Errorf("%s: bad link %q", p, l)
				continue
			}
			if u.Host != ln.Addr().String() {
				continue // an external link: not followed
			}
			target := u.Path
			if u.Fragment != "" {
				anchors = append(anchors, anchor{p, target, u.Fragment})
			}
			if seen[target] {
				continue
			}
			seen[target] = true
			if strings.HasSuffix(target, "/") || strings.HasSuffix(target, ".html") {
				queue = append(queue, target)
			} else {
				nonPages = append(nonPages, target)
			}
		}
	}
	mu.Lock()
	current = ""
	mu.Unlock()

	// Give late events (a console error after load) a moment to arrive.
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	pages := make([]string, 0, len(problems))
	for p := range problems {
		pages = append(pages, p)
	}
	sort.Strings(pages)
	for _, p := range pages {
		for _, msg := range problems[p] {
			t.Errorf("%s: %s", p, msg)
		}
	}
	for _, nf := range notFound {
		t.Errorf("the site could not serve %s", nf)
	}
	mu.Unlock()

	// Links to files that are not pages (diagrams) must be served.
	for _, f := range nonPages {
		resp, err := http.Get(base + f)
		if err != nil {
			t.Errorf("fetching %s: %v", f, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("link to %s: status %d", f, resp.StatusCode)
		}
	}

	// Every #anchor names an element of its page.
	for _, a := range anchors {
		rep := reports[a.page]
		if rep == nil {
			t.Errorf("%s links %s#%s, which is not a page", a.from, a.page, a.frag)
			continue
		}
		frag, _ := url.PathUnescape(a.frag)
		if !slices.Contains(rep.IDs, frag) {
			t.Errorf("%s links %s#%s: no element has that id", a.from, a.page, a.frag)
		}
	}

	// Every page has a title and one h1.
	var all []string
	for p := range reports {
		all = append(all, p)
	}
	sort.Strings(all)
	for _, p := range all {
		rep := reports[p]
		if strings.TrimSpace(rep.Title) == "" {
			t.Errorf("%s has no title", p)
		}
		if rep.H1 != 1 {
			t.Errorf("%s has %d h1 headings, want 1", p, rep.H1)
		}
	}

	// Nothing reads as a mail address; nothing reaches past the page, on a
	// wide window or a phone's.
	narrowWidth := int64(420)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(narrowWidth, 900)); err != nil {
		t.Fatalf("narrowing the window: %v", err)
	}
	for _, p := range all {
		pctx, cancelPage := context.WithTimeout(bctx, 30*time.Second)
		err := chromedp.Do(pctx, chromedp.Navigate(base+p))
		var narrow *pageReport
		if err == nil {
			narrow, err = chromedp.Run(pctx, chromedp.Evaluate[*pageReport](inspect))
		}
		cancelPage()
		if err != nil {
			t.Errorf("%s at %dpx: %v", p, narrowWidth, err)
			continue
		}
		for i, o := range narrow.Overflow {
			if i == 5 {
				t.Errorf("%s at %dpx: and %d more elements past the content column", p, narrowWidth, len(narrow.Overflow)-i)
				break
			}
			t.Errorf("%s at %dpx: past the content column, with no scrolling block around it: %s", p, narrowWidth, o)
		}
		if narrow.Wider {
			t.Errorf("%s at %dpx: the page scrolls sideways: a line neither wraps nor scrolls inside its block", p, narrowWidth)
		}
	}
	for _, p := range all {
		rep := reports[p]
		for _, m := range rep.Mailto {
			t.Errorf("%s: a mailto: link, from text that reads as an address (write values as code): %s", p, m)
		}
		for i, o := range rep.Overflow {
			if i == 5 {
				t.Errorf("%s: and %d more elements past the content column", p, len(rep.Overflow)-i)
				break
			}
			t.Errorf("%s: past the content column, with no scrolling block around it: %s", p, o)
		}
		if rep.Wider {
			t.Errorf("%s: the page scrolls sideways: a line neither wraps nor scrolls inside its block", p)
		}
	}

	// The footer of every page says what the results manifests say.
	prov, examples := builtFrom(t)
	for _, p := range all {
		checkFooter(t, p, reports[p].Footer, prov)
	}

	// Every documented example is on the site exactly once, with its badge.
	docs, err := docexamples.Load(*docsDir)
	if err != nil {
		t.Fatal(err)
	}
	onSite := make(map[string][]string)
	verified, leftOut := 0, 0
	for _, p := range all {
		for _, e := range reports[p].Examples {
			onSite[e.ID] = append(onSite[e.ID], p)
			ran := len(examples[e.ID].Scenarios)
			switch {
			case e.LeftOut && ran == 0:
				leftOut++
				continue
			case e.LeftOut:
				t.Errorf("%s: example %q is badged as left out, but the results have %d scenarios that ran it", p, e.ID, ran)
				continue
			case !e.Badge:
				t.Errorf("%s: example %q has no verified badge", p, e.ID)
			case e.Scenarios > docgen.BadgeScenarios:
				t.Errorf("%s: example %q: its badge names %d scenarios, more than %d: %q", p, e.ID, e.Scenarios, docgen.BadgeScenarios, e.Text)
			case ran > e.Scenarios && !e.More:
				t.Errorf("%s: example %q: its badge names %d of its %d scenarios and does not link the rest", p, e.ID, e.Scenarios, ran)
			case e.Scenarios == 0:
				t.Errorf("%s: example %q: its badge names no scenario: %q", p, e.ID, e.Text)
			case !strings.Contains(e.Text, "verified by"):
				t.Errorf("%s: example %q: badge %q does not say what verified it", p, e.ID, e.Text)
			default:
				verified++
			}
		}
	}
	for _, id := range docs.IDs() {
		if n := len(onSite[id]); n != 1 {
			e, _ := docs.Get(id)
			t.Errorf("example %q (%s:%d) is on %d pages of the site %v, want 1", id, e.File, e.Line, n, onSite[id])
		}
	}
	for id, ps := range onSite {
		if _, err := docs.Get(id); err != nil {
			t.Errorf("%v: example %q is not in the docs: the site is older than the docs; run make site", ps, id)
		}
	}

	// Every scenario of every feature file is on its page, with its status.
	feats, err := docgen.LoadFeatures(*featDir, "features")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range feats {
		p := "/features/" + f.Slug + "/"
		rep := reports[p]
		if rep == nil {
			t.Errorf("feature file %s has no page %s", f.File, p)
			continue
		}
		shown := make(map[string]scenarioSection)
		for _, s := range rep.Scenarios {
			shown[s.ID] = s
		}
		for _, s := range f.Scenarios {
			sec, ok := shown[s.Anchor]
			switch {
			case !ok:
				t.Errorf("%s: scenario %q is not on the page", p, s.Name)
			case !slices.Contains([]string{"passed", "failed", docgen.NotRun}, sec.Status) || sec.Shown != sec.Status:
				t.Errorf("%s: scenario %q shows status %q (data %q)", p, s.Name, sec.Shown, sec.Status)
			}
		}
	}

	t.Logf("%d pages, %d verified examples and %d left out by the run (%d in the docs), %d feature pages; screenshots in %s", len(reports), verified, leftOut, len(docs.IDs()), len(feats), *shotsDir)
	if reports["/troubleshooting/"] == nil {
		// TODO(issue 7): the troubleshooting screenshot appears once
		// docs/troubleshooting.md exists.
		t.Logf("no /troubleshooting/ page yet: no troubleshooting screenshot")
	}
}

// builtFrom reads the results manifests the site was built from, as its
// generated data names them, and joins them as make site did.
func builtFrom(t *testing.T) (results.Provenance, map[string]results.ExampleResult) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(*genDir, "data", "results.json"))
	if err != nil {
		t.Fatalf("the site's generated data: %v (run make site)", err)
	}
	var data docgen.SiteData
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Sources) == 0 {
		t.Fatal("the site's generated data names no results manifest: run make site")
	}
	var ms []*results.Manifest
	for _, src := range data.Sources {
		m, err := results.Read(src)
		if err != nil {
			t.Fatalf("a manifest the site was built from: %v", err)
		}
		ms = append(ms, m)
	}
	m := results.Merge(ms...)
	return m.Provenance, m.Examples
}

// checkFooter compares a page's footer with the manifests' provenance:
// the commit, every run's command, stack, tag filter and counts, and the
// parts.
func checkFooter(t *testing.T, page string, f footer, want results.Provenance) {
	t.Helper()
	if f.Commit != want.Commit {
		t.Errorf("%s: the footer names commit %q, the results are from %q", page, f.Commit, want.Commit)
	}
	if len(f.Runs) != len(want.Runs) {
		t.Errorf("%s: the footer shows %d runs, the results have %d", page, len(f.Runs), len(want.Runs))
		return
	}
	for i, r := range want.Runs {
		got := f.Runs[i]
		counts := fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed)
		if got.Command != r.Command || got.Stack != r.Stack || got.Filter != r.Filter || got.Passed != strconv.Itoa(r.Passed) || got.Failed != strconv.Itoa(r.Failed) ||
			!strings.Contains(got.Text, r.Command) || !strings.Contains(got.Text, counts) {
			t.Errorf("%s: the footer's run %d says %q (%+v); the results say %q on the %s stack, filter %q, %s", page, i+1, got.Text, got, r.Command, r.Stack, r.Filter, counts)
		}
	}
	var parts []string
	for _, p := range want.Parts {
		parts = append(parts, p.Name+" "+p.Kind)
	}
	if !slices.Equal(f.Parts, parts) {
		t.Errorf("%s: the footer's parts %v; the results' %v", page, f.Parts, parts)
	}
}

func shot(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", file, err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(file)
	t.Logf("screenshot: %s", abs)
}

// htmlPages lists the site's pages as URL paths: /, /quickstart/, ...
func htmlPages(t *testing.T, public string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(public, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		rel, err := filepath.Rel(public, p)
		if err != nil {
			return err
		}
		u := "/" + filepath.ToSlash(rel)
		if path.Base(u) == "index.html" {
			u = strings.TrimSuffix(u, "index.html")
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func consoleText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
