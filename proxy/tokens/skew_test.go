package tokens

import (
	"testing"
	"time"
)

func TestRefreshSkew(t *testing.T) {
	tests := []struct{ lifetime, want time.Duration }{
		{0, 5 * time.Minute},                // unknown lifetime
		{-time.Second, 5 * time.Minute},     // nonsense: treated as unknown
		{time.Hour, 5 * time.Minute},        // long-lived: the cap (docs/advanced.md's 1 h example)
		{40 * time.Minute, 5 * time.Minute}, // a quarter is 10m: the cap
		{20 * time.Minute, 5 * time.Minute}, // exactly the cap
		{5 * time.Minute, 75 * time.Second}, // docs/advanced.md's 5 min example
		{time.Minute, 15 * time.Second},     // the case a fixed minute breaks
		{20 * time.Second, 5 * time.Second}, // docs/advanced.md's 20 s example
		{30 * time.Second, 7500 * time.Millisecond},
		{4 * time.Second, time.Second},        // a quarter is the floor
		{3 * time.Second, time.Second},        // the floor
		{2 * time.Second, time.Second},        // the floor, still half the life
		{time.Second, 500 * time.Millisecond}, // never more than half the life
	}
	for _, tt := range tests {
		got := RefreshSkew(tt.lifetime)
		if got != tt.want {
			t.Errorf("RefreshSkew(%v) = %v, want %v", tt.lifetime, got, tt.want)
		}
		if tt.lifetime > 0 && got >= tt.lifetime {
			t.Errorf("RefreshSkew(%v) = %v: the token would be refreshed on every use", tt.lifetime, got)
		}
	}
}
