package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// ErrUnsealable: a sealed value does not open. It was sealed under another
// key, altered, or moved to another key than the one it was written under.
var ErrUnsealable = errors.New("sealed value does not open: written under another key file, altered, or moved to another key")

// LoadKeyFile returns the sealing key in path, creating the file with a new
// random key when it does not exist.
//
// The file holds exactly KeySize raw bytes: no hex, no base64, no newline.
// Raw bytes have one spelling, so a key cannot be "the same" in two
// encodings, and the length check is exact; an operator makes one with
//
//	head -c 32 /dev/urandom > FILE && chmod 600 FILE
//
// A new file is created with mode 0600 and synced, with its directory,
// before it is used: a store must never hold values sealed under a key
// that a crash could lose. An existing file that its group or others may
// read, or of another length, is refused: the error says what to do.
func LoadKeyFile(path string) (key []byte, created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("key file %s: generating a key: %w", path, err)
		}
		_, err = f.Write(key)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		if err != nil {
			os.Remove(path)
			return nil, false, fmt.Errorf("key file %s: writing the new key: %w", path, err)
		}
		return key, true, nil
	case errors.Is(err, fs.ErrExist):
		key, err := readKeyFile(path)
		return key, false, err
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("key file %s: cannot create it: its directory does not exist", path)
	default:
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o: only its owner may read it; run: chmod 600 %s", path, perm, path)
	}
	// Read one byte more than a key so a longer file is noticed.
	b, err := io.ReadAll(io.LimitReader(f, KeySize+1024))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(b) != KeySize {
		hint := ""
		switch {
		case len(b) == KeySize+1 && b[KeySize] == '\n':
			hint = " (it ends with a newline: remove it)"
		case len(b) == 2*KeySize || len(b) == 2*KeySize+1:
			hint = " (hex? decode it: xxd -r -p)"
		case len(b) == 44 || len(b) == 45:
			hint = " (base64? decode it: base64 -d)"
		}
		return nil, fmt.Errorf("key file %s holds %d bytes; it must hold exactly %d raw bytes%s", path, len(b), KeySize, hint)
	}
	return b, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Sealer seals values with AES-256-GCM. Each value gets a fresh random
// 96-bit nonce, which keeps the chance of a repeated nonce negligible well
// beyond the number of values a proxy writes under one key (NIST SP 800-38D
// §8.3 allows 2^32 random nonces per key).
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: sealing key has %d bytes; it must have %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Overhead is how many bytes Seal adds to a value.
func (s *Sealer) Overhead() int { return s.aead.NonceSize() + s.aead.Overhead() }

// Seal appends nonce and ciphertext of plaintext to dst. aad is
// authenticated but not stored: Open must be given the same aad (the
// value's place), so a sealed value copied to another place does not open.
func (s *Sealer) Seal(dst, plaintext, aad []byte) []byte {
	n := s.aead.NonceSize()
	out := append(dst, make([]byte, n)...)
	nonce := out[len(out)-n:]
	_, _ = rand.Read(nonce)
	return s.aead.Seal(out, nonce, plaintext, aad)
}

// Open appends the plaintext of sealed to dst, or returns ErrUnsealable.
func (s *Sealer) Open(dst, sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnsealable
	}
	out, err := s.aead.Open(dst, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrUnsealable
	}
	return out, nil
}
