package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// Paths of the demo's SPIFFE IDs in the trust domain: the orders service is
// spiffe://<trust domain>/orders, and so on.
const (
	OrdersPath   = "/orders"
	PaymentsPath = "/payments"
	BillingPath  = "/billing"
	GatewayPath  = "/gateway"
)

// CAAudience is the default audience of the client-credentials tokens the
// CA accepts (ca.client_audience).
const CAAudience = "gatehouse-ca"

// Identity is what a service needs for mutual TLS: its SVID, the trust
// bundle, and the policy saying who may call whom. A *workload.CASource
// (NewIdentity) is one; so is a SPIRE agent's source paired with a policy.
type Identity interface {
	workload.Source
	workload.PolicySource
}

// WorkloadConfig turns on mutual TLS between the demo services. Each
// service serves HTTPS with its own SVID, accepts only the callers the
// policy allows (connection, then method and path), and calls the other
// service over mTLS, with the user's token alongside.
type WorkloadConfig struct {
	Orders   Identity // required by NewOrders
	Payments Identity // required by NewPayments
}

// CA says where the Gatehouse workload CA is and how its root is trusted
// at first contact.
type CA struct {
	URL             string // https://host:port of the CA API
	TrustDomain     string // e.g. gatehouse.local
	RootFingerprint string // hex SHA-256 of the root's DER, or
	BundleFile      string // a SPIFFE bundle (JSON or PEM)
	// PolicyRefresh is how often the policy is fetched (default 10s).
	PolicyRefresh time.Duration
	Logger        *slog.Logger
}

// Credential is how a workload proves who it is to the CA: a single-use
// join token, or its client credentials at the issuer (the client is
// registered with a spiffe_id).
type Credential struct {
	JoinToken string
	// Client credentials: Issuer is the Gatehouse issuer URL; Audience
	// defaults to CAAudience.
	Issuer, ClientID, ClientSecret, Audience string
	HTTPClient                               *http.Client // reaches the issuer
}

// NewIdentity gets an SVID from the CA with cred and keeps it renewed; it
// blocks until the first SVID (bounded by ctx). Close it when done.
func NewIdentity(ctx context.Context, ca CA, cred Credential) (*workload.CASource, error) {
	td, err := spiffeid.TrustDomainFromString(ca.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("demo: trust domain %q: %w", ca.TrustDomain, err)
	}
	cfg := workload.CAConfig{URL: ca.URL, TrustDomain: td, RootFingerprint: ca.RootFingerprint, BundleFile: ca.BundleFile,
		PolicyRefresh: ca.PolicyRefresh, Logger: ca.Logger}
	switch {
	case cred.JoinToken != "" && cred.ClientID != "":
		return nil, errors.New("demo: a join token or client credentials, not both")
	case cred.JoinToken != "":
		cfg.JoinToken = cred.JoinToken
	case cred.ClientID != "":
		aud := cred.Audience
		if aud == "" {
			aud = CAAudience
		}
		ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: strings.TrimSuffix(cred.Issuer, "/") + "/oauth/token",
			ClientID: cred.ClientID, ClientSecret: cred.ClientSecret, Audience: []string{aud}, HTTPClient: cred.HTTPClient})
		if err != nil {
			return nil, err
		}
		cfg.TokenSource = ts
	default:
		return nil, errors.New("demo: a join token or client credentials are required to get an SVID")
	}
	return workload.NewCASource(ctx, cfg)
}

// selfID is the SPIFFE ID in id's current SVID.
func selfID(id Identity) (spiffeid.ID, error) {
	svid, err := id.GetX509SVID()
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("demo: no SVID: %w", err)
	}
	return svid.ID, nil
}

// PeerID is the SPIFFE ID of the service at path in self's trust domain.
func PeerID(self spiffeid.ID, path string) (spiffeid.ID, error) {
	return spiffeid.FromPath(self.TrustDomain(), path)
}

// ServerTLS is the TLS configuration of a service with identity id: its
// SVID, a client certificate required, and only the callers the policy
// allows to connect. It also returns the service's own SPIFFE ID and wraps
// h with the request-level policy check.
func ServerTLS(id Identity, h http.Handler) (*tls.Config, http.Handler, error) {
	self, err := selfID(id)
	if err != nil {
		return nil, nil, err
	}
	tc, err := workload.ServerTLSConfig(id, workload.AuthorizePolicy(id, self))
	if err != nil {
		return nil, nil, err
	}
	return tc, workload.Middleware(id, self, h), nil
}

// ClientTransport is a transport presenting id's SVID that talks only to
// a server whose SVID names one of the services at peerPaths (e.g.
// PaymentsPath) in id's trust domain.
func ClientTransport(id Identity, peerPaths ...string) (*http.Transport, error) {
	self, err := selfID(id)
	if err != nil {
		return nil, err
	}
	if len(peerPaths) == 0 {
		return nil, errors.New("demo: ClientTransport needs the peers' paths")
	}
	peers := make([]spiffeid.ID, 0, len(peerPaths))
	for _, p := range peerPaths {
		peer, err := PeerID(self, p)
		if err != nil {
			return nil, err
		}
		peers = append(peers, peer)
	}
	tc, err := workload.ClientTLSConfig(id, workload.AuthorizeOneOf(peers...))
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t, nil
}

// Enabled reports whether a CA is configured.
func (ca CA) Enabled() bool { return ca.URL != "" }

// baseTransport is the transport under the propagating one: mTLS with id
// towards peerPath when base is https and an identity is configured, the
// default transport otherwise.
func baseTransport(id Identity, base, peerPath string) (http.RoundTripper, error) {
	if u, err := url.Parse(base); err != nil || id == nil || u.Scheme != "https" {
		return nil, nil // plain HTTP (a bad URL is reported by origin)
	}
	return ClientTransport(id, peerPath)
}

// CAFlags adds -ca-url, -trust-domain and -ca-fingerprint to fs; the
// returned CA is filled in when fs is parsed (no -ca-url: plain HTTP).
func CAFlags(fs *flag.FlagSet) *CA {
	ca := &CA{}
	fs.StringVar(&ca.URL, "ca-url", "", "Gatehouse workload CA URL, e.g. https://127.0.0.1:8003 (empty: plain HTTP, no mTLS)")
	fs.StringVar(&ca.TrustDomain, "trust-domain", "gatehouse.local", "SPIFFE trust domain")
	fs.StringVar(&ca.RootFingerprint, "ca-fingerprint", "", "hex SHA-256 of the CA root certificate (gatehouse dev prints it)")
	return ca
}
