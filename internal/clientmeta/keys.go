package clientmeta

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	jose "github.com/go-jose/go-jose/v4"
)

// SigningKey is the ES256 key of the private_key_jwt client called name:
// derived from the run's seed, so that the harness (which signs the
// client's assertions) and mockcimd (which publishes the public key) agree
// on it without sharing a file. A new seed each run is a new key each run.
func SigningKey(seed, name string) (*ecdsa.PrivateKey, error) {
	for i := range uint32(16) {
		h := sha256.New()
		h.Write([]byte("clientmeta signing key\x00" + seed + "\x00" + name + "\x00"))
		_ = binary.Write(h, binary.BigEndian, i)
		// A scalar at or above the curve's order (odds about 2^-32) is
		// refused; the next counter gives another.
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), h.Sum(nil)); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("clientmeta: no signing key could be derived")
}

// KeySeedEnv is the environment variable mockcimd reads the key seed from.
const KeySeedEnv = "MOCKCIMD_KEY_SEED"

// KeyID is the key id of every client's signing key.
const KeyID = "es256-1"

// PublicKeys is the JWK Set the client called name publishes at its
// jwks_uri.
func PublicKeys(seed, name string) (*jose.JSONWebKeySet, error) {
	k, err := SigningKey(seed, name)
	if err != nil {
		return nil, err
	}
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: KeyID, Algorithm: string(jose.ES256), Use: "sig"}}}, nil
}
