package registration

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate limits of registration, per proxy process: a token bucket per
// client IP address and one for everyone.
const (
	// PerIPBurst registrations at once from one address, then one every
	// PerIPEvery.
	PerIPBurst = 10
	PerIPEvery = 6 * time.Second
	// GlobalBurst registrations at once from everyone, then one every
	// GlobalEvery.
	GlobalBurst = 100
	GlobalEvery = time.Second
	// maxAddresses bounds the addresses the limiter remembers; past it the
	// oldest half is forgotten.
	maxAddresses = 10_000
)

// Limiter is the registration rate limit. The zero value is ready.
type Limiter struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	global *rate.Limiter
	byIP   map[string]*rate.Limiter
}

// Allow reports whether a registration from r may go ahead now, and
// otherwise how long to wait.
func (l *Limiter) Allow(r *http.Request) (bool, time.Duration) {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.global == nil {
		l.global = rate.NewLimiter(rate.Every(GlobalEvery), GlobalBurst)
		l.byIP = make(map[string]*rate.Limiter)
	}
	per := l.byIP[ip]
	if per == nil {
		if len(l.byIP) >= maxAddresses {
			l.forgetFull(now)
		}
		per = rate.NewLimiter(rate.Every(PerIPEvery), PerIPBurst)
		l.byIP[ip] = per
	}
	rp := per.ReserveN(now, 1)
	if d := rp.DelayFrom(now); d > 0 {
		rp.CancelAt(now)
		return false, d
	}
	rg := l.global.ReserveN(now, 1)
	if d := rg.DelayFrom(now); d > 0 {
		rg.CancelAt(now)
		rp.CancelAt(now)
		return false, d
	}
	return true, 0
}

// forgetFull drops the addresses whose buckets are full again (they are
// as if new), and when that is not enough, all of them.
func (l *Limiter) forgetFull(now time.Time) {
	for ip, b := range l.byIP {
		if b.TokensAt(now) >= PerIPBurst {
			delete(l.byIP, ip)
		}
	}
	if len(l.byIP) >= maxAddresses {
		l.byIP = make(map[string]*rate.Limiter)
	}
}
