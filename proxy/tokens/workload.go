package tokens

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// workloadAlgorithms are the JWS algorithms a workload token may be
// signed with; the proxy reads its claims, the authorization server checks
// its signature.
var workloadAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// refusedAssertions remembers the last workload token a remote
// authorization server refused, by hash, with the refusal: the proxy never
// presents a refused token again (SEP-1933: no retry loop), and tries
// again only once the file holds another. The file holds one token at a
// time, so the last refusal is the only one that can matter.
type refusedAssertions struct {
	mu   sync.Mutex
	hash [sha256.Size]byte
	err  *apierror.Error
}

func (r *refusedAssertions) get(h [sha256.Size]byte) *apierror.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil && r.hash == h {
		return r.err
	}
	return nil
}

func (r *refusedAssertions) put(h [sha256.Size]byte, e *apierror.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hash, r.err = h, e
}

// workload reports whether the route's shared token comes from its
// workload's JWT.
func (s *Source) workload() bool {
	srv := s.Route.Server()
	return srv.ServiceAccount != nil && srv.ServiceAccount.WorkloadIdentity != nil
}

// JWTBearer gets a service account route's shared token, acting for
// actor, by presenting the workload's JWT from the route's token file with
// the JWT bearer grant (RFC 7523 §2.1). The file is read at every call, so
// a renewed token is used at once. A token that has expired is not sent;
// one the authorization server refused is not sent again; after a failure
// nothing else is tried: no second request, no other grant.
func (s *Source) JWTBearer(ctx context.Context, g *upstream.Grant, key, actor string) (*upstream.Token, *apierror.Error) {
	wi := s.Route.Server().ServiceAccount.WorkloadIdentity
	file := wi.TokenFile // as the operator wrote it, in messages
	assertion, e := s.readWorkloadToken(wi.Path(), file)
	if e != nil {
		return nil, e
	}
	h := sha256.Sum256([]byte(assertion))
	if prev := s.refusedJWTs.get(h); prev != nil {
		return nil, prev
	}
	k, e := s.ProofKey(g, nil)
	if e != nil {
		return nil, e
	}
	tok, err := g.JWTBearer(ctx, s.sender(k), assertion, s.Credentials.Auth(ctx, g), s.Now())
	if err != nil {
		if upstream.IsRefused(err) {
			e := apierror.Wrap(err, apierror.CodeUpstreamAuthorization,
				"The remote authorization server %s refused the route's workload token from %s (%s). Check that its issuer trusts the token's issuer and that the token's audience names %s. The proxy will not present this token again, nor try another grant: it tries again when the file holds a new token.",
				ASName(g), file, refusal(err), ASName(g))
			s.refusedJWTs.put(h, e)
			return nil, e
		}
		return nil, apierror.Wrap(err, apierror.CodeASUnreachable, "The remote authorization server %s could not be reached for the route's shared token; try again shortly.", ASName(g))
	}
	return s.obtained(tok, g, key, actor, k)
}

// readWorkloadToken reads the workload's JWT from path (file, as the
// configuration names it, in messages) and refuses, without
// sending it anywhere, one that cannot be read, is not a JWT, or has
// expired.
func (s *Source) readWorkloadToken(path, file string) (string, *apierror.Error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", apierror.Wrap(err, apierror.CodeUpstreamAuthorization,
			"The route's workload token file %s cannot be read (%v); check that it is mounted where the configuration says.", file, errors.Unwrap(err))
	}
	assertion := strings.TrimSpace(string(b))
	parsed, err := jwt.ParseSigned(assertion, workloadAlgorithms)
	var claims jwt.Claims
	if err == nil {
		err = parsed.UnsafeClaimsWithoutVerification(&claims)
	}
	if err != nil {
		return "", apierror.Wrap(err, apierror.CodeUpstreamAuthorization,
			"The route's workload token file %s does not hold a signed JWT; point workload_identity.token_file at the token itself.", file)
	}
	if claims.Expiry != nil && !s.Now().Before(claims.Expiry.Time()) {
		return "", apierror.New(apierror.CodeUpstreamAuthorization,
			"The workload token in %s expired at %s, and whatever writes the file (the kubelet, for a projected service account token) has not renewed it. The proxy did not send it; it reads the file again at the next request.",
			file, claims.Expiry.Time().UTC().Format(time.RFC3339))
	}
	return assertion, nil
}

// refusal is the OAuth error of a refused token request, as the
// authorization server named it (already redacted).
func refusal(err error) string {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err.Error()
	}
	s := re.ErrorCode
	if s == "" {
		s = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
	}
	if re.ErrorDescription != "" {
		s += ": " + re.ErrorDescription
	}
	return s
}
