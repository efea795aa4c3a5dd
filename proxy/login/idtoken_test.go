package login

import (
	"context"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// TestIDTokensValid: a kept ID token is handed out until shortly before
// its exp, then no more; a new sign-in replaces it.
func TestIDTokensValid(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	back := store.NewMemoryClock(clock)
	k := &IDTokens{Records: store.Records[IDToken]{B: back, NS: NSIDTokens}, Now: clock}
	ctx := context.Background()
	if err := k.Keep(ctx, "alice", &IDToken{Raw: "first", Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{{0, "first"}, {time.Hour - idTokenLeeway - time.Second, "first"}, {time.Hour - idTokenLeeway, ""}, {2 * time.Hour, ""}} {
		now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(tc.at)
		got, err := k.Valid(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if (got == nil && tc.want != "") || (got != nil && got.Raw != tc.want) {
			t.Errorf("at +%s: got %+v, want %q", tc.at, got, tc.want)
		}
	}
	if err := k.Keep(ctx, "alice", &IDToken{Raw: "second", Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Valid(ctx, "alice"); got == nil || got.Raw != "second" {
		t.Errorf("after a new sign-in: %+v", got)
	}
	if got, _ := k.Valid(ctx, "bob"); got != nil {
		t.Errorf("bob, who never signed in, has %+v", got)
	}
}
