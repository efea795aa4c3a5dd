package features

import (
	"context"
	"fmt"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

func init() { moreSteps = append(moreSteps, enterpriseSteps) }

// The token exchange of enterprise-managed authorization, as the identity
// provider records it.
const (
	tokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJAG  = "urn:ietf:params:oauth:token-type:id-jag"
	tokenTypeID   = "urn:ietf:params:oauth:token-type:id_token"
)

func enterpriseSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^"([^"]+)" received (\d+) token exchanges? of an ID token for an ID-JAG naming "([^"]+)"$`, w.tokenExchanges)
	sc.Step(`^"([^"]+)" received (\d+) token requests?, each with the JWT bearer grant as the client "([^"]+)"$`, w.idjagRequests)
	sc.Step(`^"([^"]+)" received one token exchange for an ID-JAG naming "([^"]+)" per authorization of (\w+)'s MCP client, each refused$`, w.refusedExchanges)
}

// refusedExchanges checks that the identity provider received one token
// exchange per time user's MCP client authorized (the MCP Go SDK's client
// tries twice), each refused: a refusal is not retried by the proxy.
func (w *world) refusedExchanges(ctx context.Context, host, audience, user string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	want := int(a.Authorizations())
	if err := w.tokenExchanges(ctx, host, want, audience); err != nil {
		return err
	}
	evs, err := w.events(ctx, host, "token")
	if err != nil {
		return err
	}
	for _, e := range evs {
		if e.Params["grant_type"] == tokenExchange && e.Status/100 != 4 {
			return fmt.Errorf("an exchange was answered %d, want a refusal", e.Status)
		}
	}
	return nil
}

// tokenExchanges checks that the identity provider received want token
// exchanges, each of an ID token for an ID-JAG for audience, from the
// proxy's authenticated client.
func (w *world) tokenExchanges(ctx context.Context, host string, want int, audience string) error {
	evs, err := w.events(ctx, host, "token")
	if err != nil {
		return err
	}
	n := 0
	for _, e := range evs {
		if e.Params["grant_type"] != tokenExchange {
			continue
		}
		n++
		switch {
		case e.Params["requested_token_type"] != tokenTypeJAG || e.Params["subject_token_type"] != tokenTypeID:
			return fmt.Errorf("exchange %d asked for %q with %q, want an ID-JAG for an ID token", n, e.Params["requested_token_type"], e.Params["subject_token_type"])
		case e.Params["audience"] != audience:
			return fmt.Errorf("exchange %d named the audience %q, want %q", n, e.Params["audience"], audience)
		case e.Params["subject_token"] == "":
			return fmt.Errorf("exchange %d carried no subject token", n)
		case e.Detail["auth_method"] == "" || e.Detail["auth_method"] == "none":
			return fmt.Errorf("exchange %d did not authenticate the proxy's client (%q)", n, e.Detail["auth_method"])
		}
	}
	if n != want {
		return fmt.Errorf("%s received %d token exchanges, want %d", host, n, want)
	}
	return nil
}

// idjagRequests checks that the remote authorization server received
// want token requests, all the JWT bearer grant with an assertion,
// authenticated as client: no consent, no other grant.
func (w *world) idjagRequests(ctx context.Context, host string, want int, client string) error {
	return w.assertionRequests(ctx, host, want, func(i int, e control.Event) error {
		if e.Params["client_id"] != client || e.Detail["auth_method"] == "none" || e.Detail["auth_method"] == "" {
			return fmt.Errorf("token request %d came from %q authenticated by %q, want %s authenticated", i+1, e.Params["client_id"], e.Detail["auth_method"], client)
		}
		return nil
	})
}
