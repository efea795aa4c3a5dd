package filestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/filestore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/storetest"
)

var ctx = context.Background()

// The file store meets the contract every store backend meets (storetest).
func TestFileStoreMeetsTheBackendContract(t *testing.T) {
	storetest.Run(t, storetest.Suite{
		Open: func(t *testing.T, clock *storetest.Clock) store.Backend {
			dir := t.TempDir()
			s, err := filestore.Open(filepath.Join(dir, "store.db"), filepath.Join(dir, "store.key"), clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

func paths(t *testing.T) (db, key string) {
	dir := t.TempDir()
	return filepath.Join(dir, "store.db"), filepath.Join(dir, "store.key")
}

func open(t *testing.T, db, key string) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(db, key, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wantOpenError(t *testing.T, db, key string, wants ...string) {
	t.Helper()
	s, err := filestore.OpenWith(db, filestore.Options{KeyFile: key, LockTimeout: 50 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatalf("Open succeeded, want an error containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Open error %q does not contain %q", err, w)
		}
	}
}

func TestKeyFileCreatedOwnerOnly(t *testing.T) {
	db, key := paths(t)
	open(t, db, key)
	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != store.KeySize {
		t.Errorf("new key file: mode %04o, %d bytes; want 0600, %d bytes", st.Mode().Perm(), st.Size(), store.KeySize)
	}
	if st, err := os.Stat(db); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("store file: %v, mode %04o; want 0600", err, st.Mode().Perm())
	}
}

func TestKeyFileRefused(t *testing.T) {
	raw := make([]byte, store.KeySize)
	rand.Read(raw)
	for _, c := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		wants   []string
	}{
		{"group readable", raw, 0o640, []string{"mode 0640", "chmod 600"}},
		{"world readable", raw, 0o604, []string{"mode 0604", "chmod 600"}},
		{"short", raw[:31], 0o600, []string{"holds 31 bytes", "exactly 32 raw bytes"}},
		{"newline", append(bytes.Clone(raw), '\n'), 0o600, []string{"holds 33 bytes", "newline"}},
		{"hex", []byte(hex.EncodeToString(raw)), 0o600, []string{"holds 64 bytes", "xxd -r -p"}},
		{"empty", nil, 0o600, []string{"holds 0 bytes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, key := paths(t)
			if err := os.WriteFile(key, c.content, c.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(key, c.mode) // WriteFile's mode is subject to the umask
			wantOpenError(t, db, key, append(c.wants, key)...)
			if _, err := os.Stat(db); err == nil {
				t.Errorf("a store file was created although the key file was refused")
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		db, _ := paths(t)
		wantOpenError(t, db, filepath.Join(t.TempDir(), "nope", "store.key"), "directory does not exist")
	})
}

func TestWrongKeyFileRefused(t *testing.T) {
	db, key := paths(t)
	s := open(t, db, key)
	if err := s.Put(ctx, "tokens", "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	other := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := store.LoadKeyFile(other); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, db, other, "key file "+other+" is not the one store file "+db+" was written with")
	// The refused start changed nothing: the right key still reads the value.
	s = open(t, db, key)
	if v, err := s.Get(ctx, "tokens", "k"); err != nil || string(v) != "v" {
		t.Errorf("after a refused start, Get = %q, %v; want \"v\"", v, err)
	}
}

// TestLostKeyFileRefused: a store without its key is refused, and no new
// key file is made that would hide what happened.
func TestLostKeyFileRefused(t *testing.T) {
	db, key := paths(t)
	s := open(t, db, key)
	s.Put(ctx, "tokens", "k", []byte("v"), time.Time{})
	s.Close()
	os.Remove(key)
	wantOpenError(t, db, key, "key file "+key+" does not exist but store file "+db+" does")
	if _, err := os.Stat(key); err == nil {
		t.Error("a refused start created a new key file")
	}
}

func TestCorruptedStoreFileRefused(t *testing.T) {
	t.Run("garbage", func(t *testing.T) {
		db, key := paths(t)
		store.LoadKeyFile(key)
		garbage := make([]byte, 64<<10)
		rand.Read(garbage)
		os.WriteFile(db, garbage, 0o600)
		wantOpenError(t, db, key, "store file "+db+" is corrupted", "move it aside")
	})
	t.Run("too short", func(t *testing.T) {
		db, key := paths(t)
		store.LoadKeyFile(key)
		os.WriteFile(db, []byte("not a database"), 0o600)
		wantOpenError(t, db, key, "store file "+db+" is corrupted")
	})
	t.Run("damaged pages", func(t *testing.T) {
		db, key := paths(t)
		s := open(t, db, key)
		for i := range 200 {
			if err := s.Put(ctx, "tokens", strings.Repeat("k", 100)+string(rune('a'+i%26))+strings.Repeat("x", i), bytes.Repeat([]byte("v"), 500), time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		b, _ := os.ReadFile(db)
		// Keep the meta pages (0 and 1), overwrite the data pages.
		page := os.Getpagesize()
		for i := 2 * page; i < len(b); i++ {
			b[i] = 0xA5
		}
		os.WriteFile(db, b, 0o600)
		wantOpenError(t, db, key, "store file "+db+" is corrupted")
	})
}

func TestSecondOpenRefused(t *testing.T) {
	db, key := paths(t)
	open(t, db, key)
	wantOpenError(t, db, key, "store file "+db+" is in use by another process")
}

// TestRestartKeepsTokens: what a restarted proxy relies on to ask no user
// to consent again.
func TestRestartKeepsTokens(t *testing.T) {
	db, key := paths(t)
	s := open(t, db, key)
	later := time.Now().Add(time.Hour)
	for k, exp := range map[string]time.Time{"forever": {}, "hour": later} {
		if err := s.Put(ctx, "tokens", k, []byte("token-"+k), exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, db, key)
	for _, k := range []string{"forever", "hour"} {
		if v, err := s.Get(ctx, "tokens", k); err != nil || string(v) != "token-"+k {
			t.Errorf("after restart Get(%s) = %q, %v; want %q", k, v, err, "token-"+k)
		}
	}
}

func TestValuesSealedOnDisk(t *testing.T) {
	db, key := paths(t)
	s := open(t, db, key)
	secret := "upstream-access-token-0123456789"
	who := "per_user\x00mcp.example.com\x00alice-the-user\x00https://remote-mcp.provider.com/mcp"
	if err := s.Put(ctx, "tokens", who, []byte(secret), time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(db)
	if bytes.Contains(b, []byte(secret)) {
		t.Fatal("the store file holds a value in the clear")
	}
	for _, part := range []string{"alice-the-user", "remote-mcp.provider.com", "mcp.example.com"} {
		if bytes.Contains(b, []byte(part)) {
			t.Errorf("the store file shows %q of a key in the clear", part)
		}
	}
}

// TestUpgradeSealsOldKeys: a store file of the earlier format (keys in the
// clear) opens with every record, and is rewritten with sealed keys.
func TestUpgradeSealsOldKeys(t *testing.T) {
	db, key := paths(t)
	s := open(t, db, key)
	s.Close()
	// Write a record as the earlier version did: format 1, key in the clear.
	if err := filestore.WriteFormat1(db, key, "tokens", "alice-the-user", []byte("alice-token")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(db); !bytes.Contains(b, []byte("alice-the-user")) {
		t.Fatal("the format 1 record was not written in the clear")
	}
	s = open(t, db, key)
	if v, err := s.Get(ctx, "tokens", "alice-the-user"); err != nil || string(v) != "alice-token" {
		t.Fatalf("after the upgrade Get = %q, %v", v, err)
	}
	s.Close()
	if b, _ := os.ReadFile(db); bytes.Contains(b, []byte("alice-the-user")) {
		t.Error("after the upgrade the file still shows the key")
	}
}

// TestMovedValueDoesNotOpen: an attacker with write access to the file
// cannot move a sealed token to another user's key or extend its expiry.
func TestMovedValueDoesNotOpen(t *testing.T) {
	db, key := paths(t)
	s := open(t, db, key)
	exp := time.Now().Add(time.Hour)
	s.Put(ctx, "tokens", "alice", []byte("alice-token"), exp)
	s.Put(ctx, "tokens", "bob", []byte("bob-token"), exp)
	s.Close()

	raw, err := bolt.Open(db, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tokens"))
		aliceKey, bobKey := s.DiskKey("tokens", "alice"), s.DiskKey("tokens", "bob")
		alice := bytes.Clone(b.Get(aliceKey))
		if err := b.Put(bobKey, alice); err != nil {
			return err
		}
		// Extend the expiry in the clear header of a copy under its own key.
		bob := bytes.Clone(alice)
		bob[1]++
		return b.Put(aliceKey, bob)
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, db, key)
	for _, k := range []string{"bob", "alice"} {
		v, err := s.Get(ctx, "tokens", k)
		if !errors.Is(err, store.ErrUnsealable) {
			t.Errorf("Get(%s) of a moved or altered value = %q, %v; want ErrUnsealable", k, v, err)
		}
		if err != nil && strings.Contains(err.Error(), k) {
			t.Errorf("error %q names the key", err)
		}
	}
	// A value that does not open is kept, not consumed.
	if _, err := s.Take(ctx, "tokens", "bob"); !errors.Is(err, store.ErrUnsealable) {
		t.Errorf("Take of an altered value: %v, want ErrUnsealable", err)
	}
	if _, err := s.Get(ctx, "tokens", "bob"); !errors.Is(err, store.ErrUnsealable) {
		t.Errorf("after Take, Get: %v, want the value still there (ErrUnsealable)", err)
	}
}
