package clientmeta

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

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

// KeyID is the key id of every client's first signing key.
const KeyID = "es256-1"

// RotatedKey is the key of the client called name after gen rotations
// (gen 0 is SigningKey's), and its key id.
func RotatedKey(seed, name string, gen int) (*ecdsa.PrivateKey, string, error) {
	if gen == 0 {
		k, err := SigningKey(seed, name)
		return k, KeyID, err
	}
	k, err := SigningKey(seed, fmt.Sprintf("%s#%d", name, gen))
	return k, fmt.Sprintf("es256-%d", gen+1), err
}

// PublicKeys is the JWK Set the client called name publishes (at its
// jwks_uri, or in its document) after gen rotations.
func PublicKeys(seed, name string, gen int) (*jose.JSONWebKeySet, error) {
	k, kid, err := RotatedKey(seed, name, gen)
	if err != nil {
		return nil, err
	}
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}}}, nil
}
