package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func TestStartCreatesRootAndIntermediate(t *testing.T) {
	st := newMemStore()
	c := newTestCA(t, st, testConfig(), nil)
	if !c.Ready() {
		t.Fatal("not ready after Start")
	}
	for _, kind := range []string{storage.AuthorityRoot, storage.AuthorityIntermediate} {
		got := st.list(kind)
		if len(got) != 1 || got[0].State != storage.AuthorityActive || got[0].Generation != 1 {
			t.Fatalf("%s authorities = %+v, want one active generation 1", kind, got)
		}
	}
	s := snap(c)
	root, inter := s.root.cert, s.inter.cert
	if !root.IsCA || root.MaxPathLen != 1 || !strings.HasPrefix(root.Subject.CommonName, "Gatehouse root CA 1 ") {
		t.Errorf("root: IsCA=%v MaxPathLen=%d CN=%q", root.IsCA, root.MaxPathLen, root.Subject.CommonName)
	}
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero || inter.CheckSignatureFrom(root) != nil {
		t.Errorf("intermediate: IsCA=%v MaxPathLen=%d zero=%v", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if got := inter.NotAfter.Sub(inter.NotBefore); got < DefaultIntermediateTTL || got > DefaultIntermediateTTL+time.Minute {
		t.Errorf("intermediate lifetime %v", got)
	}
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || root.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("root key is not P-256")
	}
	b, seq := c.Bundle()
	if len(b.X509Authorities()) != 1 || !b.X509Authorities()[0].Equal(root) || seq != 1 {
		t.Fatalf("bundle: %d roots, seq %d", len(b.X509Authorities()), seq)
	}

	// A second Start on the same store loads, it does not create.
	c2 := newTestCA(t, st, testConfig(), nil)
	if !snap(c2).root.cert.Equal(root) || len(st.list(storage.AuthorityIntermediate)) != 1 {
		t.Fatal("restart did not load the stored authorities")
	}
	if err := c.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestBundleJSON(t *testing.T) {
	cfg := testConfig()
	cfg.RefreshInterval = 15 * time.Second
	c := newTestCA(t, nil, cfg, nil)
	raw, err := c.BundleJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []struct {
			Use string   `json:"use"`
			Kty string   `json:"kty"`
			Crv string   `json:"crv"`
			X5c []string `json:"x5c"`
		} `json:"keys"`
		Seq  *uint64 `json:"spiffe_sequence"`
		Hint *int64  `json:"spiffe_refresh_hint"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 || doc.Keys[0].Use != "x509-svid" || doc.Keys[0].Kty != "EC" || doc.Keys[0].Crv != "P-256" ||
		len(doc.Keys[0].X5c) != 1 || doc.Seq == nil || *doc.Seq != 1 || doc.Hint == nil || *doc.Hint != 15 {
		t.Fatalf("bundle JSON: %s", raw)
	}
	parsed, err := spiffebundle.Parse(testTD, raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Bundle()
	if !parsed.X509Bundle().Equal(b) {
		t.Fatal("parsed bundle differs from Bundle()")
	}
}

func TestNotReadyBeforeStart(t *testing.T) {
	c, err := New(newMemStore(), testConfig(), nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if c.Ready() {
		t.Fatal("ready before Start")
	}
	_, err = c.Issue(context.Background(), mustID(t, "spiffe://example.org/a"), ecKey(t, elliptic.P256()).Public(), 0)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("Issue before Start: %v", err)
	}
	if _, err := c.BundleJSON(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("BundleJSON before Start: %v", err)
	}
	if b, seq := c.Bundle(); len(b.X509Authorities()) != 0 || seq != 0 {
		t.Fatal("bundle before Start not empty")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	other := ecKey(t, elliptic.P256())
	up := makeUpstream(t, elliptic.P256())
	weak := makeUpstream(t, elliptic.P224())
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no trust domain", Config{KEK: testKEK(1)}},
		{"short KEK", Config{TrustDomain: testTD, KEK: []byte("short")}},
		{"upstream key mismatch", Config{TrustDomain: testTD, KEK: testKEK(1), Upstream: &Upstream{Cert: up.Cert, Key: other}}},
		{"upstream weak key", Config{TrustDomain: testTD, KEK: testKEK(1), Upstream: weak}},
		{"upstream without key", Config{TrustDomain: testTD, KEK: testKEK(1), Upstream: &Upstream{Cert: up.Cert}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(newMemStore(), tt.cfg, nil, nil); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidAKID             = asn1.ObjectIdentifier{2, 5, 29, 35}
)

// hostileCSRTemplate asks for everything the CA must not grant.
func hostileCSRTemplate(t *testing.T) *x509.CertificateRequest {
	bc, err := asn1.Marshal(struct {
		IsCA       bool
		MaxPathLen int
	}{true, 5})
	if err != nil {
		t.Fatal(err)
	}
	ku, err := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7}) // keyCertSign, cRLSign
	if err != nil {
		t.Fatal(err)
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}}) // codeSigning
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := url.Parse("spiffe://example.org/admin")
	foreign, _ := url.Parse("spiffe://evil.example/x")
	return &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "admin", Organization: []string{"Gatehouse"}},
		DNSNames:       []string{"ca.example.org", "*.example.org"},
		EmailAddresses: []string{"root@example.org"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		URIs:           []*url.URL{evil, foreign},
		ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Critical: true, Value: bc},
			{Id: oidKeyUsage, Critical: true, Value: ku},
			{Id: oidExtKeyUsage, Value: eku},
		},
	}
}

func TestMT02CSRFieldsIgnored(t *testing.T) {
	clk := newClock()
	c := newTestCA(t, nil, testConfig(), clk)
	ctx := context.Background()
	id := mustID(t, "spiffe://example.org/orders")
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p256 := ecKey(t, elliptic.P256())
	good := makeCSR(t, nil, p256)
	badSig := slices.Clone(good)
	badSig[len(badSig)-3] ^= 0x55

	tests := []struct {
		name    string
		csr     []byte
		wantErr error
		usage   x509.KeyUsage
	}{
		{"hostile fields on P-256", makeCSR(t, hostileCSRTemplate(t), p256), nil, x509.KeyUsageDigitalSignature},
		{"hostile fields on P-384", makeCSR(t, hostileCSRTemplate(t), ecKey(t, elliptic.P384())), nil, x509.KeyUsageDigitalSignature},
		{"hostile fields on Ed25519", makeCSR(t, hostileCSRTemplate(t), edKey), nil, x509.KeyUsageDigitalSignature},
		{"hostile fields on RSA 2048", makeCSR(t, hostileCSRTemplate(t), rsa2048), nil, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"weak RSA 1024", makeCSR(t, nil, rsa1024), ErrWeakKey, 0},
		{"unsupported curve P-224", makeCSR(t, nil, ecKey(t, elliptic.P224())), ErrWeakKey, 0},
		{"bad signature", badSig, ErrBadCSR, 0},
		{"garbage", []byte("not a CSR"), ErrBadCSR, 0},
		{"empty", nil, ErrBadCSR, 0},
		{"trailing data", append(slices.Clone(good), 0), ErrBadCSR, 0},
		{"too large", make([]byte, MaxCSRSize+1), ErrBadCSR, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svid, err := c.IssueCSR(ctx, id, tt.csr, 0)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLeaf(t, c, svid, id, tt.usage)
		})
	}

	t.Run("lifetime clamped to the issuer", func(t *testing.T) {
		inter := snap(c).signing.cert
		clk.Advance(inter.NotAfter.Sub(clk.Now()) - 10*time.Minute)
		svid, err := c.IssueCSR(ctx, id, good, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !svid.NotAfter.Equal(inter.NotAfter) || svid.Certificates[0].NotAfter.After(inter.NotAfter) {
			t.Fatalf("leaf NotAfter %v, issuer NotAfter %v", svid.NotAfter, inter.NotAfter)
		}
	})
}

// checkLeaf checks that the leaf carries only CA-chosen fields and verifies.
func checkLeaf(t *testing.T, c *CA, svid *SVID, id interface{ String() string }, usage x509.KeyUsage) {
	t.Helper()
	leaf := svid.Certificates[0]
	if len(svid.Certificates) != 2 || !svid.Certificates[1].Equal(snap(c).signing.cert) {
		t.Fatal("chain is not leaf + intermediate")
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() || svid.ID.String() != id.String() {
		t.Errorf("URIs = %v", leaf.URIs)
	}
	if len(leaf.DNSNames)+len(leaf.EmailAddresses)+len(leaf.IPAddresses) != 0 {
		t.Errorf("extra SANs: %v %v %v", leaf.DNSNames, leaf.EmailAddresses, leaf.IPAddresses)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("leaf is a CA")
	}
	if leaf.KeyUsage != usage {
		t.Errorf("KeyUsage = %b, want %b", leaf.KeyUsage, usage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) ||
		len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("ExtKeyUsage = %v %v", leaf.ExtKeyUsage, leaf.UnknownExtKeyUsage)
	}
	if leaf.Subject.CommonName != "" || !slices.Equal(leaf.Subject.Organization, []string{"Gatehouse workload"}) {
		t.Errorf("subject = %v", leaf.Subject)
	}
	for _, ext := range leaf.Extensions {
		known := []asn1.ObjectIdentifier{oidBasicConstraints, oidKeyUsage, oidExtKeyUsage, oidSAN, oidAKID}
		if !slices.ContainsFunc(known, ext.Id.Equal) {
			t.Errorf("unexpected extension %v", ext.Id)
		}
	}
	if leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v too short", leaf.SerialNumber)
	}
	b, _ := c.Bundle()
	if _, _, err := x509svid.Verify(svid.Certificates, b, x509svid.WithTime(c.now())); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestIssueIDAndTTL(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SVIDTTL = 30 * time.Minute
	c := newTestCA(t, nil, cfg, clk)
	pub := ecKey(t, elliptic.P256()).Public()
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		id      string
		ttl     time.Duration
		wantTTL time.Duration
		wantErr error
	}{
		{"default ttl", "spiffe://example.org/a", 0, 30 * time.Minute, nil},
		{"shorter ttl", "spiffe://example.org/a", 5 * time.Minute, 5 * time.Minute, nil},
		{"ttl clamped", "spiffe://example.org/a", 48 * time.Hour, 30 * time.Minute, nil},
		{"negative ttl", "spiffe://example.org/a/b", -time.Second, 30 * time.Minute, nil},
		{"other trust domain", "spiffe://other.org/a", 0, 0, ErrBadID},
		{"no path", "spiffe://example.org", 0, 0, ErrBadID},
		{"zero id", "", 0, 0, ErrBadID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var id spiffeid.ID
			if tt.id != "" {
				id = mustID(t, tt.id)
			}
			svid, err := c.Issue(ctx, id, pub, tt.ttl)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			leaf := svid.Certificates[0]
			if got := leaf.NotAfter.Sub(clk.Now()); got > tt.wantTTL || got < tt.wantTTL-time.Second {
				t.Errorf("lifetime %v, want %v", got, tt.wantTTL)
			}
			if want := clk.Now().Add(-DefaultBackdate); !leaf.NotBefore.Equal(want.Truncate(time.Second)) {
				t.Errorf("NotBefore %v, want %v", leaf.NotBefore, want)
			}
		})
	}
	if _, err := c.Issue(ctx, mustID(t, "spiffe://example.org/a"), &rsa.PublicKey{N: big.NewInt(12345), E: 65537}, 0); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("tiny RSA key: %v", err)
	}
}

func TestCheckSigningKey(t *testing.T) {
	huge := new(big.Int).Lsh(big.NewInt(1), 9000)
	ok2048 := new(big.Int).Lsh(big.NewInt(1), 2047)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		ok   bool
	}{
		{"P-256", ecKey(t, elliptic.P256()).Public(), true},
		{"P-384", ecKey(t, elliptic.P384()).Public(), true},
		{"P-521", ecKey(t, elliptic.P521()).Public(), false},
		{"P-224", ecKey(t, elliptic.P224()).Public(), false},
		{"RSA 2048", &rsa.PublicKey{N: ok2048, E: 65537}, true},
		{"RSA 9001", &rsa.PublicKey{N: huge, E: 65537}, false},
		{"RSA even exponent", &rsa.PublicKey{N: ok2048, E: 4}, false},
		{"Ed25519", ed25519.PublicKey(make([]byte, 32)), true},
		{"Ed25519 short", ed25519.PublicKey(make([]byte, 31)), false},
		{"nil", nil, false},
		{"nil ECDSA", (*ecdsa.PublicKey)(nil), false},
		{"ECDSA point off the curve", &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}, false},
		{"ECDSA without coordinates", &ecdsa.PublicKey{Curve: elliptic.P256()}, false},
		{"string", "key", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSigningKey(tt.pub)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrWeakKey)) {
				t.Fatalf("checkSigningKey = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestMT01WrongCAIdenticalSubject: a chain from a forged CA that copies our
// root's and intermediate's subjects (and the leaf's) fails verification.
func TestMT01WrongCAIdenticalSubject(t *testing.T) {
	clk := newClock()
	c := newTestCA(t, nil, testConfig(), clk)
	id := mustID(t, "spiffe://example.org/orders")
	svid, err := c.Issue(context.Background(), id, ecKey(t, elliptic.P256()).Public(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Bundle()
	if _, _, err := x509svid.Verify(svid.Certificates, b, x509svid.WithTime(clk.Now())); err != nil {
		t.Fatalf("genuine chain: %v", err)
	}
	s := snap(c)
	fakeRootKey, fakeInterKey, leafKey := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	fakeRoot := resign(t, s.root.cert, nil, fakeRootKey, fakeRootKey)
	fakeInter := resign(t, s.signing.cert, fakeRoot, fakeInterKey, fakeRootKey)
	fakeLeaf := resign(t, svid.Certificates[0], fakeInter, leafKey, fakeInterKey)
	if fakeInter.Subject.String() != s.signing.cert.Subject.String() {
		t.Fatal("forged subject differs")
	}
	for name, chain := range map[string][]*x509.Certificate{
		"forged intermediate":           {fakeLeaf, fakeInter},
		"forged intermediate with root": {fakeLeaf, fakeInter, fakeRoot},
		"forged leaf, genuine inter":    {fakeLeaf, s.signing.cert},
	} {
		if _, _, err := x509svid.Verify(chain, b, x509svid.WithTime(clk.Now())); err == nil {
			t.Errorf("%s: verified against the genuine bundle", name)
		}
	}
	// A genuine chain fails against another CA's bundle.
	other := newTestCA(t, nil, testConfig(), clk)
	ob, _ := other.Bundle()
	if _, _, err := x509svid.Verify(svid.Certificates, ob, x509svid.WithTime(clk.Now())); err == nil {
		t.Error("verified against another CA's bundle")
	}
}

// resign copies tmpl's fields into a certificate for key signed by parent
// (self-signed when parent is nil).
func resign(t *testing.T, tmpl, parent *x509.Certificate, key, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	cp := *tmpl
	cp.SubjectKeyId, cp.AuthorityKeyId, cp.PublicKey = nil, nil, key.Public()
	if parent == nil {
		parent = &cp
	}
	der, err := x509.CreateCertificate(rand.Reader, &cp, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestKeysSealedAtRest(t *testing.T) {
	st := newMemStore()
	c := newTestCA(t, st, testConfig(), nil)
	recs, _ := st.ListAuthorities(context.Background())
	for _, rec := range recs {
		a := c.cache[rec.ID]
		if a == nil || a.signer == nil {
			t.Fatalf("%s key not loaded", rec.Kind)
		}
		der, err := x509.MarshalPKCS8PrivateKey(a.signer)
		if err != nil {
			t.Fatal(err)
		}
		scalar := a.signer.(*ecdsa.PrivateKey).D.Bytes()
		if bytes.Contains(rec.Sealed, der) || bytes.Contains(rec.Sealed, scalar) {
			t.Fatalf("%s: the stored bytes contain the private key", rec.Kind)
		}
	}

	cfg := testConfig()
	cfg.KEK = testKEK(8)
	wrong, err := New(st, cfg, nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Start(context.Background())
	if !errors.Is(err, ErrUnseal) || !strings.Contains(err.Error(), "key-encryption key") {
		t.Fatalf("Start with a wrong KEK: %v", err)
	}
	if wrong.Ready() {
		t.Fatal("ready with a wrong KEK")
	}

	// A sealed key moved to another record (AAD = id) does not unseal.
	moved := newMemStore()
	for _, rec := range recs {
		if rec.Kind == storage.AuthorityRoot {
			for _, other := range recs {
				if other.Kind == storage.AuthorityIntermediate {
					rec.Sealed = other.Sealed
				}
			}
		}
		_ = moved.CreateAuthority(context.Background(), rec)
	}
	m, _ := New(moved, testConfig(), nil, quietLog())
	if err := m.Start(context.Background()); !errors.Is(err, ErrUnseal) {
		t.Fatalf("moved sealed key: %v", err)
	}
}
