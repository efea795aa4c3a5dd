// Package store holds the proxy's state: browser sessions, pending
// authorizations, codes, the grants it issued to MCP clients, and the
// upstream tokens it acquired for them, in a Backend (memory, a sealed
// bbolt file, or Redis).
//
// Secrets the proxy issues (access and refresh tokens, codes, states,
// session ids) are stored only under their SHA-256 hash: a copy of the
// store cannot be replayed. Upstream tokens are stored as received, because
// the proxy must send them on; the file and Redis backends seal them.
package store
