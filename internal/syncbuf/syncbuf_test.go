package syncbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Concurrent writers lose no write, and a reader may read meanwhile (the
// race detector checks the locking).
func TestConcurrentWritesAreAllKept(t *testing.T) {
	var b Buffer
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "w%d line %d\n", w, i)
			}
		})
	}
	wg.Go(func() {
		for range lines {
			_ = b.String()
		}
	})
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for w := range writers {
		for i := range lines {
			if want := fmt.Sprintf("w%d line %d", w, i); !strings.Contains(b.String(), want+"\n") {
				t.Fatalf("lost %q", want)
			}
		}
	}
}

// Past its limit the buffer drops writes but reports them written.
func TestLimitDropsLaterWrites(t *testing.T) {
	b := Buffer{Limit: 4}
	for _, s := range []string{"abc", "de", "fg"} {
		n, err := b.Write([]byte(s))
		if n != len(s) || err != nil {
			t.Errorf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
		}
	}
	// "abc" (3 bytes, not over 4) lets "de" in; at 5 bytes "fg" is dropped.
	if got, want := b.String(), "abcde"; got != want {
		t.Errorf("kept %q, want %q", got, want)
	}
	var unlimited Buffer
	for range 3 {
		unlimited.Write([]byte("abc"))
	}
	if got, want := unlimited.String(), "abcabcabc"; got != want {
		t.Errorf("with no limit kept %q, want %q", got, want)
	}
}

// Tee gets what was written before it, then every later write, once.
func TestTeeGetsThePastThenEveryWrite(t *testing.T) {
	var b Buffer
	b.Write([]byte("before\n"))
	var copyOf bytes.Buffer
	if err := b.Tee(&copyOf); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("after\n"))
	if got, want := copyOf.String(), "before\nafter\n"; got != want {
		t.Errorf("tee got %q, want %q", got, want)
	}
	if got, want := b.String(), "before\nafter\n"; got != want {
		t.Errorf("buffer holds %q, want %q", got, want)
	}
}
