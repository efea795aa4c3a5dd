package dpopcheck

import (
	"crypto/rand"
	"sync"
)

// Nonce is the nonce a server requires in proofs (RFC 9449 §8, §9), which
// a test may rotate: random, so unpredictable (RFC 9449 §8.1). The zero
// value holds none; Rotate gives it one.
type Nonce struct {
	mu sync.Mutex
	v  string
}

// Get is the current nonce.
func (n *Nonce) Get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.v
}

// Rotate replaces the nonce with a new random one and returns it; proofs
// carrying the old one are refused from now on.
func (n *Nonce) Rotate() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.v = rand.Text()
	return n.v
}
