package acme

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/filestore"
)

var ctx = context.Background()

// backends are the stores the storage is tested on: memory, and the
// sealed file store the proxy uses by default.
func backends(t *testing.T) map[string]store.Backend {
	dir := t.TempDir()
	fb, err := filestore.Open(filepath.Join(dir, "db"), filepath.Join(dir, "key"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	m := store.NewMemory()
	t.Cleanup(func() { fb.Close(); m.Close() })
	return map[string]store.Backend{"memory": m, "file": fb}
}

// filled returns a Storage holding the keys of a certmagic tree.
func filled(t *testing.T, b store.Backend) *Storage {
	t.Helper()
	s := NewStorage(b, func() time.Time { return time.Unix(1_800_000_000, 42) })
	for _, k := range []string{
		"certificates/ca/mcp.example.com/mcp.example.com.crt",
		"certificates/ca/mcp.example.com/mcp.example.com.key",
		"certificates/ca/mcp.example.com2/x.crt",
		"acme/ca/users/ops@example.com/ops.json",
		"last_clean.json",
	} {
		if err := s.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
	return s
}

func TestStoreLoad(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := filled(t, b)
			got, err := s.Load(ctx, "last_clean.json")
			if err != nil || string(got) != "value of last_clean.json" {
				t.Fatalf("Load = %q, %v", got, err)
			}
			if err := s.Store(ctx, "last_clean.json", []byte("new")); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Load(ctx, "last_clean.json"); string(got) != "new" {
				t.Errorf("after a second Store, Load = %q, want new", got)
			}
			for _, k := range []string{"nothing", "certificates/ca", "certificates"} {
				if _, err := s.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Load(%q) = %v, want fs.ErrNotExist (certmagic tells a missing key by it)", k, err)
				}
			}
			for _, k := range []string{"", "/a", "a/"} {
				if err := s.Store(ctx, k, nil); err == nil {
					t.Errorf("Store(%q) succeeded", k)
				}
			}
		})
	}
}

func TestStat(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := filled(t, b)
			for _, c := range []struct {
				key      string
				exists   bool
				terminal bool
			}{
				{"last_clean.json", true, true},
				{"certificates", true, false},
				{"certificates/ca/mcp.example.com", true, false},
				{"certificates/ca/mcp.example", false, false}, // a prefix of a name, not a directory
				{"certificates/ca/mcp.example.com/mcp.example.com.crt", true, true},
				{"acme/ca/users/ops", false, false},
				{"none", false, false},
			} {
				info, err := s.Stat(ctx, c.key)
				if c.exists != (err == nil) || s.Exists(ctx, c.key) != c.exists {
					t.Errorf("Stat(%q) = %v; Exists = %v; want exists %v", c.key, err, s.Exists(ctx, c.key), c.exists)
					continue
				}
				if !c.exists {
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("Stat(%q) = %v, want fs.ErrNotExist", c.key, err)
					}
					continue
				}
				if info.Key != c.key || info.IsTerminal != c.terminal {
					t.Errorf("Stat(%q) = %+v, want terminal %v", c.key, info, c.terminal)
				}
				if c.terminal && (!info.Modified.Equal(time.Unix(1_800_000_000, 42)) || info.Size != int64(len("value of "+c.key))) {
					t.Errorf("Stat(%q) = modified %v, size %d", c.key, info.Modified, info.Size)
				}
			}
		})
	}
}

func TestList(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := filled(t, b)
			for _, c := range []struct {
				dir       string
				recursive bool
				want      []string
			}{
				{"", false, []string{"acme", "certificates", "last_clean.json"}},
				{"certificates/ca", false, []string{"certificates/ca/mcp.example.com", "certificates/ca/mcp.example.com2"}},
				{"certificates/ca/mcp.example.com", false, []string{
					"certificates/ca/mcp.example.com/mcp.example.com.crt", "certificates/ca/mcp.example.com/mcp.example.com.key"}},
				{"certificates", true, []string{
					"certificates/ca",
					"certificates/ca/mcp.example.com",
					"certificates/ca/mcp.example.com/mcp.example.com.crt",
					"certificates/ca/mcp.example.com/mcp.example.com.key",
					"certificates/ca/mcp.example.com2",
					"certificates/ca/mcp.example.com2/x.crt",
				}},
			} {
				got, err := s.List(ctx, c.dir, c.recursive)
				if err != nil || !slices.Equal(got, c.want) {
					t.Errorf("List(%q, %v) = %q, %v\nwant %q", c.dir, c.recursive, got, err, c.want)
				}
			}
			for _, dir := range []string{"nothing", "certificates/ca/mcp"} {
				if got, err := s.List(ctx, dir, false); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("List(%q) = %q, %v; want fs.ErrNotExist", dir, got, err)
				}
			}
		})
	}
}

func TestDelete(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := filled(t, b)
			if err := s.Delete(ctx, "certificates/ca/mcp.example.com"); err != nil {
				t.Fatal(err)
			}
			got, err := s.List(ctx, "certificates", true)
			want := []string{"certificates/ca", "certificates/ca/mcp.example.com2", "certificates/ca/mcp.example.com2/x.crt"}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("after deleting a directory, List = %q, %v; want %q (only what was below it goes)", got, err, want)
			}
			if err := s.Delete(ctx, "last_clean.json"); err != nil {
				t.Fatal(err)
			}
			if s.Exists(ctx, "last_clean.json") {
				t.Error("a deleted key exists")
			}
			if err := s.Delete(ctx, "never/stored"); err != nil {
				t.Errorf("deleting what is not there: %v, want nil", err)
			}
		})
	}
}

// TestLockAcrossReplicas: two Storages on one backend are two replicas; a
// lock one holds keeps the other waiting until it is unlocked.
func TestLockAcrossReplicas(t *testing.T) {
	b := store.NewMemory()
	defer b.Close()
	one, two := NewStorage(b, nil), NewStorage(b, nil)
	if err := one.Lock(ctx, "issue_cert_mcp.example.com"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := two.Lock(short, "issue_cert_mcp.example.com"); err == nil {
		t.Fatal("the second replica took a lock the first holds")
	}
	if err := two.Lock(ctx, "issue_cert_other.example.com"); err != nil {
		t.Errorf("another name: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- two.Lock(ctx, "issue_cert_mcp.example.com") }()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while the lock was held", err)
	case <-time.After(30 * time.Millisecond):
	}
	if err := one.Unlock(ctx, "issue_cert_mcp.example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting replica did not get the lock after Unlock")
	}
	if err := one.Unlock(ctx, "issue_cert_mcp.example.com"); err == nil {
		t.Error("unlocking a lock this replica no longer holds succeeded")
	}
}

// TestSealedOnDisk: a private key certmagic stores is sealed by the file
// store like every other value.
func TestSealedOnDisk(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	fb, err := filestore.Open(db, filepath.Join(dir, "key"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIAcertmagicprivatekey")
	if err := NewStorage(fb, nil).Store(ctx, "certificates/ca/mcp.example.com/mcp.example.com.key", secret); err != nil {
		t.Fatal(err)
	}
	fb.Close()
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, secret[30:]) || bytes.Contains(raw, []byte("mcp.example.com.key")) {
		t.Error("the store file holds the private key or its name in the clear")
	}
}
