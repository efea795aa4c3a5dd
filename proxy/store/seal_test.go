package store_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

func TestSealer(t *testing.T) {
	key := make([]byte, store.KeySize)
	rand.Read(key)
	s, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("refresh-token")
	sealed := s.Seal([]byte("hdr"), msg, []byte("ns\x00alice"))
	if !bytes.HasPrefix(sealed, []byte("hdr")) || len(sealed) != 3+len(msg)+s.Overhead() {
		t.Fatalf("Seal output %d bytes, want dst + %d", len(sealed), len(msg)+s.Overhead())
	}
	if again := s.Seal(nil, msg, []byte("ns\x00alice")); bytes.Equal(again, sealed[3:]) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := s.Open(nil, sealed[3:], []byte("ns\x00alice"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other := make([]byte, store.KeySize)
	rand.Read(other)
	s2, _ := store.NewSealer(other)
	flipped := bytes.Clone(sealed[3:])
	flipped[len(flipped)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other place": func() ([]byte, error) { return s.Open(nil, sealed[3:], []byte("ns\x00bob")) },
		"other key":   func() ([]byte, error) { return s2.Open(nil, sealed[3:], []byte("ns\x00alice")) },
		"altered":     func() ([]byte, error) { return s.Open(nil, flipped, []byte("ns\x00alice")) },
		"short":       func() ([]byte, error) { return s.Open(nil, sealed[3:10], []byte("ns\x00alice")) },
	} {
		if v, err := open(); !errors.Is(err, store.ErrUnsealable) {
			t.Errorf("%s: Open = %q, %v; want ErrUnsealable", name, v, err)
		}
	}
	if _, err := store.NewSealer(key[:16]); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

func TestLoadKeyFileCreatesThenReads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	k1, created, err := store.LoadKeyFile(p)
	if err != nil || !created || len(k1) != store.KeySize {
		t.Fatalf("first LoadKeyFile = %d bytes, created %v, %v", len(k1), created, err)
	}
	k2, created, err := store.LoadKeyFile(p)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second LoadKeyFile: created %v, same key %v, %v", created, bytes.Equal(k1, k2), err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
}
