package storage

import (
	"context"
	"time"
)

// Workload identity storage: the CA's authorities (root and intermediate
// certificates with their sealed private keys) and single-use join tokens.
//
// Rotation across replicas is a compare-and-swap: CreateAuthority inserts
// generation max+1 of a kind and fails with ErrAlreadyExists when another
// replica got there first; ActivateAuthority moves prepared → active and the
// previous active authority of the same kind → retired in one transaction,
// and fails with ErrAlreadyUsed when the authority is no longer prepared.

// Authority kinds and states.
const (
	AuthorityRoot         = "root"
	AuthorityIntermediate = "intermediate"

	AuthorityPrepared = "prepared" // published (roots: in the bundle), not yet signing
	AuthorityActive   = "active"   // signs; exactly one per kind once started
	AuthorityRetired  = "retired"  // superseded; kept until NotAfter for verification
)

// CAAuthority is one CA certificate of the workload CA and its private key,
// sealed (AES-GCM, AAD = ID) by internal/ca before it reaches storage.
type CAAuthority struct {
	ID          string // lower-case hex SHA-256 of CertDER
	Kind        string // AuthorityRoot | AuthorityIntermediate
	Generation  int64  // unique per Kind: rotation inserts max+1
	CertDER     []byte
	Sealed      []byte // never empty
	State       string // AuthorityPrepared | AuthorityActive | AuthorityRetired
	NotBefore   time.Time
	NotAfter    time.Time
	CreatedAt   time.Time
	ActivatedAt time.Time // zero while prepared
	RetiredAt   time.Time // zero unless retired
}

// JoinToken is a single-use bootstrap credential for one SPIFFE ID. Only the
// keyed hash of the token is stored.
type JoinToken struct {
	Hash      string // lower-case hex of the keyed hash (internal/secret.Keyed.Sum)
	SPIFFEID  string // the identity the token's holder receives
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until consumed
}

// CAStore persists the workload CA's authorities and join tokens.
type CAStore interface {
	// CreateAuthority inserts a. ErrAlreadyExists when a.ID or (a.Kind,
	// a.Generation) exists; ErrInvalid for an empty ID, an unknown Kind or
	// State, an empty CertDER or Sealed, or Generation < 1.
	CreateAuthority(ctx context.Context, a CAAuthority) error
	// ListAuthorities returns every authority ordered by Kind then Generation.
	ListAuthorities(ctx context.Context) ([]CAAuthority, error)
	// ActivateAuthority atomically sets the prepared authority id to active
	// (ActivatedAt = at) and the currently active authority of the same kind,
	// if any, to retired (RetiredAt = at). ErrNotFound for an unknown id;
	// ErrAlreadyUsed when id is not prepared (another replica activated it):
	// nothing changes then. Of concurrent callers exactly one succeeds.
	ActivateAuthority(ctx context.Context, id string, at time.Time) error
	// DeleteAuthority removes a retired authority (pruning after NotAfter).
	// ErrNotFound for an unknown id; ErrInvalid when it is not retired.
	DeleteAuthority(ctx context.Context, id string) error

	// CreateJoinToken stores t (UsedAt must be zero). ErrAlreadyExists on a
	// duplicate hash; ErrInvalid for an empty Hash or SPIFFEID or ExpiresAt
	// not after CreatedAt.
	CreateJoinToken(ctx context.Context, t JoinToken) error
	// ConsumeJoinToken marks the token used at now and returns it, atomically:
	// of concurrent callers with the same hash exactly one succeeds. Errors:
	// ErrNotFound (unknown hash), ErrAlreadyUsed (consumed before; the
	// returned token is filled in), ErrExpired (now ≥ ExpiresAt; the token
	// is left unused). Expired and used tokens are deleted by Store.GC.
	ConsumeJoinToken(ctx context.Context, hash string, now time.Time) (JoinToken, error)
}

// SPIFFERevocationRetention is how long Store.GC keeps a SPIFFE revocation:
// longer than the longest SVID life (24 h) plus the CA's longest refresh
// interval (10 m).
const SPIFFERevocationRetention = 25 * time.Hour

// SPIFFERevocationStore persists revoked SPIFFE IDs (table
// spiffe_revocations): an SVID for a revoked ID issued before the revocation
// is no longer renewed by the CA API; fresh bootstraps still work. It is
// separate from CAStore so that the CA core's narrow store stays as it is;
// *sqlstore.Store implements both.
//
// A revocation only stops the renewal of SVIDs issued before it (or up to
// the CA's refresh interval, at most 10 m, after it), and no SVID lives
// longer than 24 h (the ca.svid_ttl maximum): Store.GC deletes revocations
// older than SPIFFERevocationRetention, when every SVID they could refuse
// has expired.
type SPIFFERevocationStore interface {
	// RevokeSPIFFEID records that id was revoked at at (an upsert that
	// keeps the latest time). ErrInvalid for an empty id or a zero at.
	RevokeSPIFFEID(ctx context.Context, id string, at time.Time) error
	// ListSPIFFERevocations returns every revoked ID with its latest
	// revocation time.
	ListSPIFFERevocations(ctx context.Context) (map[string]time.Time, error)
}
