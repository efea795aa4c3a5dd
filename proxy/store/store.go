// Package store is the proxy's byte key-value store: a Backend (memory, a
// sealed bbolt file, or Redis) holds opaque values by namespace and key,
// and Records gives a package a typed, JSON-encoded view of its own
// namespace. The record types live with the packages that use them
// (authserver, bearer, connect, tokens); this package imports nothing of
// the proxy's.
//
// Secrets the proxy issues (access and refresh tokens, codes, states,
// session ids) are stored only under their SHA-256 hash (SecretKey): a copy
// of the store cannot be replayed. Upstream tokens are stored as received,
// because the proxy must send them on; the file and Redis backends seal
// them.
package store
