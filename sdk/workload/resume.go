package workload

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// Session resumption guard (ServerTLSConfig).
//
// A resumed TLS session carries the certificates of the full handshake
// that created it. crypto/tls checks before resuming that the client's
// certificate has not expired, but VerifyConnection runs a few
// milliseconds later and would then reject an SVID that expired in
// between; and a client resuming a session made before the server renewed
// its SVID verifies the older server certificate. The server therefore
// records in each ticket (SessionState.Extra) its own leaf's fingerprint
// and the client leaf's validity, and refuses to resume (a full handshake
// follows, with the current SVIDs) when the server has renewed since or
// either leaf expires within resumeMargin.
//
// crypto/tls does not tell WrapSession which certificate the handshake
// presented, only which one is current when the ticket is made. A handshake
// that took the previous SVID from GetCertificate just before a renewal
// would mint, moments later, a ticket bound to the new one, and its client
// would later resume with the previous chain (seen in the rotation test: a
// resumed session verified against an intermediate that had just expired).
// Tickets made within switchGrace of a renewed SVID being taken up are
// therefore not made resumable (the first SVID has no predecessor to
// confuse).

// resumeExtraPrefix starts our SessionState.Extra entry (id and version,
// so that other layers' entries are told apart).
var resumeExtraPrefix = []byte("gatehouse-workload-resume/1\x00")

// resumeExtraLen is the entry's length: prefix, server leaf SHA-256,
// client leaf start of life and NotAfter (Unix nanoseconds).
var resumeExtraLen = len(resumeExtraPrefix) + sha256.Size + 16

// maxResumeMargin caps resumeMargin.
const maxResumeMargin = 5 * time.Second

// resumeMargin is how long before a leaf's NotAfter (the client's, or the
// server's own) a session is no longer resumed: two fifths of its life, at
// most 5 s. Sources renew at half of the remaining life ±10%, so by then
// the workload holds a newer SVID and the full handshake costs nothing
// extra; the margin must cover a stalled handshake (on a loaded machine
// under -race, ~0.8 s has been seen between the server's resumption
// decision and the peer's verification).
func resumeMargin(life time.Duration) time.Duration {
	return min(maxResumeMargin, max(life, 0)*2/5)
}

type resumeInfo struct {
	serverFP      [sha256.Size]byte
	clientStart   time.Time
	clientExpires time.Time
}

func (r resumeInfo) encode() []byte {
	b := make([]byte, 0, resumeExtraLen)
	b = append(b, resumeExtraPrefix...)
	b = append(b, r.serverFP[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.clientStart.UnixNano()))
	return binary.BigEndian.AppendUint64(b, uint64(r.clientExpires.UnixNano()))
}

// findResumeInfo returns our entry of extra; false when there is none (a
// ticket from another configuration) or it is malformed.
func findResumeInfo(extra [][]byte) (resumeInfo, bool) {
	for _, e := range extra {
		if len(e) != resumeExtraLen || !bytes.HasPrefix(e, resumeExtraPrefix) {
			continue
		}
		var r resumeInfo
		rest := e[len(resumeExtraPrefix):]
		copy(r.serverFP[:], rest)
		rest = rest[sha256.Size:]
		r.clientStart = time.Unix(0, int64(binary.BigEndian.Uint64(rest)))
		r.clientExpires = time.Unix(0, int64(binary.BigEndian.Uint64(rest[8:])))
		return r, true
	}
	return resumeInfo{}, false
}

// resumeGuard implements WrapSession and UnwrapSession for a server
// configuration.
type resumeGuard struct {
	cfg   *tls.Config // EncryptTicket/DecryptTicket with its ticket keys
	certs *certCache  // the server's current SVID
	ages  *leafAges
	now   func() time.Time
}

// switchGrace is how long after the server takes up an SVID its tickets
// stay unresumable: a third of the SVID's life from then, at most 5 s. A
// ticket bound to the wrong SVID needs a handshake that spent longer than
// that between GetCertificate and WrapSession.
func switchGrace(life time.Duration) time.Duration {
	return min(maxResumeMargin, max(life, 0)/3)
}

// wrap records the server's current leaf and the client leaf's validity,
// then encrypts the session as crypto/tls would. A ticket made just after
// the server took up its current SVID gets no entry (see switchGrace), so
// unwrap refuses it.
func (g *resumeGuard) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	own, err := g.certs.current()
	if err == nil && len(cs.PeerCertificates) > 0 &&
		(!own.replaced || g.now().Sub(own.first) >= switchGrace(own.cert.Leaf.NotAfter.Sub(own.first))) {
		leaf := cs.PeerCertificates[0]
		ss.Extra = append(ss.Extra, resumeInfo{
			serverFP:      own.fp,
			clientStart:   g.ages.start(leaf, g.now()),
			clientExpires: leaf.NotAfter,
		}.encode())
	}
	return g.cfg.EncryptTicket(cs, ss)
}

// unwrap decrypts a ticket and returns nil (a full handshake) unless the
// server still presents the same SVID and neither it nor the client leaf is
// about to expire.
func (g *resumeGuard) unwrap(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := g.cfg.DecryptTicket(identity, cs)
	if err != nil || ss == nil {
		return nil, nil //nolint:nilerr // an unusable ticket means a full handshake
	}
	info, ok := findResumeInfo(ss.Extra)
	if !ok {
		return nil, nil
	}
	own, err := g.certs.current()
	if err != nil || own.fp != info.serverFP {
		return nil, nil // renewed (or no SVID): present the current one
	}
	now := g.now()
	margin := resumeMargin(info.clientExpires.Sub(info.clientStart))
	if !now.Add(margin).Before(info.clientExpires) {
		return nil, nil // the client's SVID is about to expire: it must present its new one
	}
	// Our own SVID about to expire (a late renewal): the client would check
	// the session's certificate a moment before verifying it again, and
	// could see it expire in between. A full handshake presents whatever the
	// source holds by then. Its life counts from when the server first took
	// it from the source (not from its backdated NotBefore).
	ownExpires := own.cert.Leaf.NotAfter
	if !now.Add(resumeMargin(ownExpires.Sub(own.first))).Before(ownExpires) {
		return nil, nil
	}
	return ss, nil
}

// maxLeafAges bounds leafAges; past it, expired entries are dropped, and
// everything if that is not enough.
const maxLeafAges = 4096

// leafAges remembers when each peer leaf was first seen, so that its life
// is measured from then: certificate authorities backdate NotBefore (ours
// by 30 s, SPIRE by 10 s), which for short-lived SVIDs dwarfs their real
// life.
type leafAges struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]leafAge
}

type leafAge struct{ first, notAfter time.Time }

func newLeafAges() *leafAges { return &leafAges{seen: map[[sha256.Size]byte]leafAge{}} }

// start returns the start of leaf's life: when it was first seen, or its
// NotBefore when that is later.
func (a *leafAges) start(leaf *x509.Certificate, now time.Time) time.Time {
	fp := sha256.Sum256(leaf.Raw)
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.seen[fp]
	if !ok {
		if len(a.seen) >= maxLeafAges {
			for k, v := range a.seen {
				if now.After(v.notAfter) {
					delete(a.seen, k)
				}
			}
			if len(a.seen) >= maxLeafAges {
				clear(a.seen)
			}
		}
		e = leafAge{first: now, notAfter: leaf.NotAfter}
		a.seen[fp] = e
	}
	if e.first.Before(leaf.NotBefore) {
		return leaf.NotBefore
	}
	return e.first
}
