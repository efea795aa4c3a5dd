package features

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, workloadSteps) }

// jwtBearer is RFC 7523's grant type, as the remote authorization server
// records it.
const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// workloadTokens is the stack's minting of workload tokens: the cluster's
// service account issuer, which the remote authorization server trusts.
type workloadTokens interface {
	WorkloadToken(audience string, expiry time.Time) (string, error)
}

func workloadSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^the workload's token names the audience "([^"]+)"$`, func(aud string) error {
		return w.writeWorkloadToken(aud, time.Now().Add(time.Hour))
	})
	sc.Step(`^the workload's token has expired$`, func() error {
		return w.writeWorkloadToken("https://"+stack.ASHost, time.Now().Add(-time.Minute))
	})
	sc.Step(`^the workload's token is renewed$`, func() error {
		return w.writeWorkloadToken("https://"+stack.ASHost, time.Now().Add(time.Hour))
	})
	sc.Step(`^"([^"]+)" received (\d+) token requests?, each with the JWT bearer grant and no client authentication$`, w.jwtBearerRequests)
	sc.Step(`^(\w+)'s browser shows the documented error "([^"]+)", each <\.\.\.> standing for any text$`, w.browserShowsDocumentedPattern)
}

// tokenFile is the workload token file of the configuration's first route
// that has one, as the configuration names it.
func (w *world) tokenFile() (string, error) {
	var shape struct {
		Routes []struct {
			MCP struct {
				Server struct {
					ServiceAccount struct {
						WorkloadIdentity struct {
							TokenFile string `yaml:"token_file"`
						} `yaml:"workload_identity"`
					} `yaml:"service_account"`
				} `yaml:"server"`
			} `yaml:"mcp"`
		} `yaml:"routes"`
	}
	if err := yaml.Unmarshal([]byte(w.config), &shape); err != nil {
		return "", err
	}
	for _, r := range shape.Routes {
		if f := r.MCP.Server.ServiceAccount.WorkloadIdentity.TokenFile; f != "" {
			return f, nil
		}
	}
	return "", errors.New("the operator configuration has no workload_identity.token_file")
}

// writeWorkloadToken replaces the workload's token, as the kubelet would.
func (w *world) writeWorkloadToken(audience string, expiry time.Time) error {
	f, err := w.tokenFile()
	if err != nil {
		return err
	}
	mint, ok := w.st.(workloadTokens)
	if !ok {
		return fmt.Errorf("the %s stack mints no workload tokens", w.st.Mode())
	}
	tok, err := mint.WorkloadToken(audience, expiry)
	if err != nil {
		return err
	}
	return w.st.WriteFile(f, []byte(tok+"\n"))
}

// jwtBearerRequests checks that host received want token requests, all of
// them the JWT bearer grant with an assertion and without any client
// authentication: no other grant was tried.
func (w *world) jwtBearerRequests(ctx context.Context, host string, want int) error {
	return w.assertionRequests(ctx, host, want, func(i int, e control.Event) error {
		if e.Detail["auth_method"] != "none" || e.Params["client_secret"] != "" || e.Params["client_assertion"] != "" {
			return fmt.Errorf("token request %d authenticated the client (%q); a workload presents its JWT alone", i+1, e.Detail["auth_method"])
		}
		return nil
	})
}

// assertionRequests checks that host received want token requests, each
// the JWT bearer grant with an assertion and nothing else, and each as
// client says.
func (w *world) assertionRequests(ctx context.Context, host string, want int, client func(i int, e control.Event) error) error {
	evs, err := w.events(ctx, host, "token")
	if err != nil {
		return err
	}
	if len(evs) != want {
		return fmt.Errorf("%s received %d token requests, want %d", host, len(evs), want)
	}
	for i, e := range evs {
		switch {
		case e.Params["grant_type"] != jwtBearer:
			return fmt.Errorf("token request %d used the grant %q, want only %s", i+1, e.Params["grant_type"], jwtBearer)
		case e.Params["assertion"] == "":
			return fmt.Errorf("token request %d carried no assertion", i+1)
		}
		if err := client(i, e); err != nil {
			return err
		}
	}
	return nil
}

// browserShowsDocumentedPattern compares the error page a user's browser
// stopped at with a documented error whose <...> placeholders stand for
// any text (an authorization server's own words, a time).
func (w *world) browserShowsDocumentedPattern(user, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	if a.PageError == nil {
		return fmt.Errorf("%s's browser did not stop at an error page", user)
	}
	w.page = a.PageError
	parts := regexp.MustCompile(`<[^<>]+>`).Split(strings.TrimSpace(e.Body), -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	got := w.page.Element("code") + ": " + w.page.Element("message")
	if !regexp.MustCompile(`^` + strings.Join(parts, `.+`) + `$`).MatchString(got) {
		return fmt.Errorf("the page at %s says\n  %s\nthe docs say\n  %s", w.page.URL, got, strings.TrimSpace(e.Body))
	}
	if w.page.Element("request-id") == "" {
		return errors.New("the error page shows no request id")
	}
	return nil
}
