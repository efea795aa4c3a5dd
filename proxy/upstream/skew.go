package upstream

import "time"

// Refresh skew bounds: a token is refreshed at most MaxRefreshSkew and at
// least MinRefreshSkew before it expires.
const (
	MaxRefreshSkew = time.Minute
	MinRefreshSkew = time.Second
)

// RefreshSkew returns how long before its expiry a token that lives for
// lifetime should be refreshed: a quarter of its life, at most
// MaxRefreshSkew, and at least MinRefreshSkew (but never more than half its
// life, so a token of a second or two is still used before it is renewed).
// A fixed one-minute skew would renew a token that lives a minute or less
// on every request. An unknown lifetime (zero or negative) gets
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
