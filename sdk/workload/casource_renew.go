package workload

import (
	"context"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// sleep waits d or until Close; it reports whether the source still runs.
func (s *CASource) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// renewalDelay is the time until half of sv's remaining lifetime at
// obtained (when the source installed it) ± 10 % (uniform). The lifetime is
// measured from obtained, not from NotBefore: the CA backdates NotBefore
// (30 s for clock skew), so with a short svid_ttl "half-life from
// NotBefore" would already be past and the source would renew non-stop.
// A zero obtained (or one before NotBefore) falls back to NotBefore.
func (s *CASource) renewalDelay(sv *x509svid.SVID, obtained time.Time) time.Duration {
	leaf := leafOf(sv)
	start := obtained
	if start.IsZero() || start.Before(leaf.NotBefore) {
		start = leaf.NotBefore
	}
	life := leaf.NotAfter.Sub(start)
	if life <= 0 {
		return 0
	}
	frac := 0.5 + (s.opt.rand()*0.2 - 0.1)
	at := start.Add(time.Duration(frac * float64(life)))
	return max(at.Sub(s.opt.now()), 0)
}

// current returns the SVID and when it was installed.
func (s *CASource) current() (*x509svid.SVID, time.Time) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid, s.obtained
}

// nextRenewal is the delay until the current SVID's renewal.
func (s *CASource) nextRenewal() time.Duration {
	return s.renewalDelay(s.current())
}

// retryDelay is the jittered backoff, shortened so that the SVID does not
// expire while waiting: one more attempt comes before NotAfter.
func (s *CASource) retryDelay(backoff time.Duration, sv *x509svid.SVID) time.Duration {
	d := s.jitter(backoff)
	left := leafOf(sv).NotAfter.Sub(s.opt.now())
	if left <= 0 || d < left {
		return d
	}
	if d = left * 3 / 4; d < 50*time.Millisecond {
		d = left
	}
	return d
}

// svidLoop renews the SVID at half-life, retries with backoff while the CA
// fails, and bootstraps again with the TokenSource once it has expired.
func (s *CASource) svidLoop() {
	defer s.wg.Done()
	backoff := s.opt.backoffMin
	wait := s.nextRenewal()
	for {
		if !s.sleep(wait) {
			return
		}
		sv := s.currentSVID()
		expired := !s.opt.now().Before(leafOf(sv).NotAfter)
		if expired && s.cfg.TokenSource == nil {
			s.log.Error("workload: SVID expired and cannot be renewed: a new join token is needed",
				"spiffe_id", sv.ID.String(), "expired_at", leafOf(sv).NotAfter)
			return
		}
		err := s.renewOnce(sv, expired)
		if err == nil {
			backoff = s.opt.backoffMin
			wait = s.nextRenewal()
			continue
		}
		if s.ctx.Err() != nil {
			return
		}
		s.setLastErr(err)
		s.log.Warn("workload: SVID renewal failed", "spiffe_id", sv.ID.String(),
			"expires_at", leafOf(sv).NotAfter, "error", err.Error())
		wait = s.retryDelay(backoff, sv)
		backoff = min(2*backoff, s.opt.backoffMax)
	}
}

// renewOnce renews over mTLS, or bootstraps with the TokenSource when the
// SVID has expired or the CA no longer accepts it.
func (s *CASource) renewOnce(sv *x509svid.SVID, expired bool) error {
	if !expired {
		id := sv.ID
		err := s.issue(s.ctx, s.mtls, "", "renewal", &id)
		if err == nil || s.cfg.TokenSource == nil ||
			!isCACode(err, http.StatusUnauthorized, "svid_expired", "invalid_svid", "svid_revoked") {
			return err
		}
		s.log.Warn("workload: the CA refused the SVID for renewal; bootstrapping again", "error", err.Error())
	}
	auth, err := s.bearer()
	if err != nil {
		return err
	}
	return s.issue(s.ctx, s.anon, auth, "client_credentials", nil)
}

// install makes sv (and b, when the answer had one) current.
func (s *CASource) install(sv *x509svid.SVID, b *spiffebundle.Bundle, method string) {
	s.mu.Lock()
	s.svid = sv
	s.obtained = s.opt.now()
	s.lastErr = nil
	if b != nil {
		seq, hasSeq := b.SequenceNumber()
		hint, _ := b.RefreshHint()
		s.setBundleLocked(b.X509Bundle(), seq, hasSeq, hint)
	}
	s.mu.Unlock()
	s.mtlsTr.CloseIdleConnections() // new connections present the new SVID
	s.notify()
	leaf := leafOf(sv)
	s.log.Info("workload: SVID installed", "spiffe_id", sv.ID.String(), "method", method,
		"serial", leaf.SerialNumber.Text(16), "expires_at", leaf.NotAfter)
}

// bundleInterval is the bundle's refresh hint within [1s, 1h] (default 5m).
func (s *CASource) bundleInterval() time.Duration {
	s.mu.RLock()
	d := s.bundleHint
	s.mu.RUnlock()
	if d <= 0 {
		d = 5 * time.Minute
	}
	return min(max(d, minBundleRefresh), maxBundleRefresh)
}

func (s *CASource) bundleLoop() {
	defer s.wg.Done()
	for s.sleep(s.bundleInterval()) {
		s.fetchBundle(s.ctx)
	}
}

// fetchBundle refreshes the bundle over a verified connection; on any
// error the current bundle stays.
func (s *CASource) fetchBundle(ctx context.Context) {
	data, _, err := s.call(ctx, s.anon, http.MethodGet, "/v1/bundle", nil, "")
	if err == nil {
		var b *spiffebundle.Bundle
		if b, err = parseBundle(s.cfg.TrustDomain, data); err == nil {
			seq, hasSeq := b.SequenceNumber()
			hint, _ := b.RefreshHint()
			s.mu.Lock()
			changed := s.setBundleLocked(b.X509Bundle(), seq, hasSeq, hint)
			s.mu.Unlock()
			if changed {
				s.notify()
				s.log.Info("workload: trust bundle updated", "roots", len(b.X509Authorities()), "sequence", seq)
			}
			return
		}
	}
	if ctx.Err() == nil {
		s.log.Warn("workload: trust bundle refresh failed; keeping the current bundle", "error", err.Error())
	}
}

func (s *CASource) policyLoop() {
	defer s.wg.Done()
	for s.sleep(s.cfg.PolicyRefresh) {
		if sv := s.currentSVID(); s.opt.now().Before(leafOf(sv).NotAfter) {
			s.fetchPolicy(s.ctx)
		}
	}
}

// fetchPolicy replaces the policy with the CA's; on any error the last good
// policy stays.
func (s *CASource) fetchPolicy(ctx context.Context) {
	data, _, err := s.call(ctx, s.mtls, http.MethodGet, "/v1/policy", nil, "")
	if err == nil {
		var p *Policy
		if p, err = DecodePolicy(data); err == nil {
			if cur := s.policy.Load(); cur == nil || cur.Version() != p.Version() {
				s.policy.Store(p)
				s.notify()
				s.log.Info("workload: policy updated", "version", p.Version())
			}
			return
		}
	}
	if ctx.Err() == nil {
		s.log.Warn("workload: policy refresh failed; keeping the last policy", "error", err.Error())
	}
}
