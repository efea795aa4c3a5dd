package tokens

import "time"

// Refresh skew bounds: a token is refreshed at most MaxRefreshSkew and at
// least MinRefreshSkew before it expires. Five minutes leave a token of an
// hour room for about a dozen attempts with backoff before it expires
// (docs/advanced.md, "Refreshing remote tokens").
const (
	MaxRefreshSkew = 5 * time.Minute
	MinRefreshSkew = time.Second
)

// RefreshSkew returns how long before its expiry a token that lives for
// lifetime should be refreshed: a quarter of its life, at most
// MaxRefreshSkew, and at least MinRefreshSkew (but never more than half its
// life, so a token of a second or two is still used before it is renewed).
// A fixed skew would renew a token that lives less than it on every
// request. An unknown lifetime (zero or negative) gets
// MaxRefreshSkew.
func RefreshSkew(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return MaxRefreshSkew
	}
	skew := min(lifetime/4, MaxRefreshSkew)
	if skew < MinRefreshSkew {
		skew = min(MinRefreshSkew, lifetime/2)
	}
	return skew
}
