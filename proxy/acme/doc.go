// Package acme obtains and renews the certificates of the routes' hosts
// from an ACME certificate authority (RFC 8555) with certmagic, Caddy's
// library: Storage keeps certmagic's files in the proxy's store (sealed,
// and shared by the replicas of one Redis, locks included), and Manager
// runs one certmagic cache per process across configuration reloads.
package acme
