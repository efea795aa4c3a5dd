package sitetest

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var pagesDir = flag.String("pages", "../../build/conformance/pages", "the proxy's own pages the scenarios kept (make conformance)")

// proxyPages are the pages of the proxy that scenarios keep for this test,
// and a text each must show.
var proxyPages = map[string]string{
	// The access policy's refusal (docs/access-policy.md).
	"policy-route-denied.html": "Access denied You are signed in as bob@example.com (bob), and the operator has not given you the MCP server at mcp.example.com.",
}

// TestProxyPages renders the proxy's own pages, as the scenarios saw them,
// in chromium: each shows its text to a person (visible, not merely in the
// markup), loads nothing from anywhere (the pages are self-contained) and
// logs no error. A screenshot of each goes beside the site's.
func TestProxyPages(t *testing.T) {
	dir, err := filepath.Abs(*pagesDir)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := chromium()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, browserOptions(t, bin)...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	var mu sync.Mutex
	var problems []string
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, "console error: "+consoleText(e.Args))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *network.EventRequestWillBeSent:
			if u, err := url.Parse(e.Request.URL); err == nil && u.Host != ln.Addr().String() {
				problems = append(problems, "request outside the page: "+e.Request.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range proxyPages {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Fatalf("no kept page %s: make conformance keeps it (the access policy scenarios); %v", name, err)
			}
			pctx, cancel := chromedp.NewContext(bctx)
			defer cancel()
			if err := chromedp.Do(pctx, chromedp.Navigate(fmt.Sprintf("http://%s/%s", ln.Addr(), name))); err != nil {
				t.Fatal(err)
			}
			text, err := chromedp.Run(pctx, chromedp.Evaluate[string](`document.body.innerText`))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
				t.Errorf("the page shows\n%s\nwithout %q", text, want)
			}
			shot(t, pctx, filepath.Join(*shotsDir, "proxy-"+strings.TrimSuffix(name, ".html")+".png"))
			mu.Lock()
			defer mu.Unlock()
			if len(problems) > 0 {
				t.Errorf("the page had problems: %q", problems)
				problems = nil
			}
		})
	}
}
