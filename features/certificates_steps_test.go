package features

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// acmeState is a scenario's ACME server (Pebble) and the certificates the
// proxy presented, by host: the first and the last seen.
type acmeState struct {
	server      *stack.ACMEServer
	first, last map[string]*x509.Certificate
}

func init() {
	moreSteps = append(moreSteps, func(w *world, sc *godog.ScenarioContext) {
		sc.Step(`^an ACME server$`, func(ctx context.Context) error { return w.acmeServer(ctx, 0, true) })
		sc.Step(`^an ACME server issuing certificates that live (\d+) seconds$`, func(ctx context.Context, n int) error {
			return w.acmeServer(ctx, time.Duration(n)*time.Second, true)
		})
		sc.Step(`^an ACME server that is not running$`, func(ctx context.Context) error { return w.acmeServer(ctx, 0, false) })
		sc.Step(`^the ACME server starts$`, func(ctx context.Context) error {
			if w.acme == nil {
				return errors.New("the scenario has no ACME server")
			}
			return w.acme.server.Start(ctx)
		})
		sc.Step(`^"([^"]+)" presents a certificate issued by the ACME server$`, func(ctx context.Context, host string) error {
			return w.presentsACMECertificate(ctx, host)
		})
		sc.Step(`^"([^"]+)" presents a certificate issued by the ACME server within (\d+) seconds$`, func(ctx context.Context, host string, n int) error {
			return poll(ctx, time.Duration(n)*time.Second, func() error { return w.presentsACMECertificate(ctx, host) })
		})
		sc.Step(`^"([^"]+)" presents the same certificate as before$`, w.presentsSameCertificate)
		sc.Step(`^"([^"]+)" presents a new certificate within (\d+) seconds, before the first one expires$`, w.presentsRenewedCertificate)
		sc.Step(`^a TLS handshake with "([^"]+)" fails$`, func(ctx context.Context, host string) error {
			if cert, err := w.presentedCertificate(ctx, host); err == nil {
				return fmt.Errorf("%s presented a certificate of %q (issuer %q); want the handshake to fail", host, cert.Subject.CommonName, cert.Issuer.CommonName)
			}
			return nil
		})
		sc.Step(`^the proxy logged "([^"]+)" for "([^"]+)"$`, func(ctx context.Context, event, host string) error {
			return poll(ctx, 10*time.Second, func() error {
				if n := w.countLogged(event, host); n == 0 {
					return fmt.Errorf("the proxy logged no %s line for %s:\n%s", event, host, w.st.ProxyLog())
				}
				return nil
			})
		})
		sc.Step(`^the proxy obtained (\d+) certificates in all$`, func(want int) error {
			if n := w.countLogged("certificate_obtained", ""); n != want {
				return fmt.Errorf("the proxy logged %d certificate_obtained lines, want %d", n, want)
			}
			return nil
		})
	})
}

// acmeServer starts Pebble for the scenario, on the in-process stack
// only: it validates on the proxy's loopback listeners.
func (w *world) acmeServer(ctx context.Context, validity time.Duration, start bool) error {
	st, err := w.stack()
	if err != nil {
		return err
	}
	local, ok := st.(*stack.Local)
	if !ok {
		return fmt.Errorf("an ACME server needs the in-process stack, not %s", st.Mode())
	}
	srv, err := local.PrepareACMEServer(stack.ACMEServerOptions{Dir: realServersDir(), Validity: validity})
	if err != nil {
		return err
	}
	w.acme = &acmeState{server: srv, first: map[string]*x509.Certificate{}, last: map[string]*x509.Certificate{}}
	if start {
		return srv.Start(ctx)
	}
	return nil
}

// presentedCertificate makes a new HTTPS connection to host, verifying
// its certificate with what the stack trusts (its CA and the ACME
// server's roots), and returns the leaf it presented.
func (w *world) presentedCertificate(ctx context.Context, host string) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/oauth-protected-resource/mcp", nil)
	if err != nil {
		return nil, err
	}
	req.Close = true // a new handshake each time, so a renewal is seen
	resp, err := w.st.Transport().RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, fmt.Errorf("%s presented no certificate", host)
	}
	return resp.TLS.PeerCertificates[0], nil
}

func (w *world) presentsACMECertificate(ctx context.Context, host string) error {
	if w.acme == nil {
		return errors.New("the scenario has no ACME server")
	}
	cert, err := w.presentedCertificate(ctx, host)
	if err != nil {
		return err
	}
	// Pebble's intermediates are called "Pebble Intermediate CA …"; the
	// run's own CA issues the certificates of cert_file setups.
	if !strings.HasPrefix(cert.Issuer.CommonName, "Pebble") || cert.VerifyHostname(host) != nil {
		return fmt.Errorf("%s presented a certificate for %v issued by %q, not one of the ACME server's for it", host, cert.DNSNames, cert.Issuer.CommonName)
	}
	if w.acme.first[host] == nil {
		w.acme.first[host] = cert
	}
	w.acme.last[host] = cert
	return nil
}

func (w *world) presentsSameCertificate(ctx context.Context, host string) error {
	before := w.acme.last[host]
	if before == nil {
		return fmt.Errorf("no certificate of %s was seen before", host)
	}
	if err := w.presentsACMECertificate(ctx, host); err != nil {
		return err
	}
	if got := w.acme.last[host]; got.SerialNumber.Cmp(before.SerialNumber) != 0 {
		return fmt.Errorf("%s now presents serial %x, before %x: the certificate was ordered again", host, got.SerialNumber, before.SerialNumber)
	}
	return nil
}

// presentsRenewedCertificate waits for a certificate of host with another
// serial than the first seen, seen while the first is still valid.
func (w *world) presentsRenewedCertificate(ctx context.Context, host string, n int) error {
	first := w.acme.first[host]
	if first == nil {
		return fmt.Errorf("no certificate of %s was seen before", host)
	}
	return poll(ctx, time.Duration(n)*time.Second, func() error {
		if err := w.presentsACMECertificate(ctx, host); err != nil {
			return err
		}
		got := w.acme.last[host]
		now := time.Now()
		if got.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return fmt.Errorf("%s still presents serial %x, which expires at %s", host, first.SerialNumber, first.NotAfter.Format(time.TimeOnly))
		}
		if !now.Before(first.NotAfter) {
			return fmt.Errorf("the new certificate (serial %x) came at %s, after the first expired at %s", got.SerialNumber, now.Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly))
		}
		return nil
	})
}

// countLogged counts the proxy's log lines of event, for host when it is
// not empty.
func (w *world) countLogged(event, host string) int {
	n := 0
	for _, line := range strings.Split(w.st.ProxyLog(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["event"] != event {
			continue
		}
		if host == "" || m["host"] == host {
			n++
		}
	}
	return n
}
