package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// The API callers' issuer: symmetric (HS256) with a key that lives only in
// this process, so a minted token is worthless anywhere else.
const (
	benchIssuer   = "https://issuer.bench.example"
	benchAudience = "gatehouse-authz"
)

// caller holds the symmetric key of the fake issuer.
type caller struct{ key []byte }

func newCaller() caller {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go ≥ 1.24)
	return caller{key: k}
}

// verifier verifies API callers' tokens as the service's Callers.
func (c caller) verifier() (*auth.Verifier, error) {
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: benchIssuer, Audience: benchAudience, HMACKey: c.key}}})
	if err != nil {
		return nil, fmt.Errorf("caller verifier: %w", err)
	}
	return v, nil
}

// mint signs an HS256 at+jwt access token for the authz API with scope
// authz:check, valid for ttl (RFC 9068 claims).
func (c caller) mint(ttl time.Duration) (string, error) {
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	now := time.Now()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "at+jwt"})
	if err != nil {
		return "", fmt.Errorf("token header: %w", err)
	}
	p, err := json.Marshal(map[string]any{"iss": benchIssuer, "sub": "bench-svc", "client_id": "bench-svc",
		"aud": benchAudience, "scope": authz.ScopeCheck, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
		"jti": enc.EncodeToString(jti[:])})
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil)), nil
}

// world is an authorization service over real parts: a policy set loaded
// from a generated directory, a relation store, the rebac checker with its
// cache, a decision log (production defaults: every decision formatted,
// written to io.Discard) and HS256 callers.
type world struct {
	set     *policy.Set
	svc     *authz.Service
	checker *rebac.Checker
	caller  caller
	closers []func()
}

func (w *world) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// newWorld builds a world over store with the policy directory polDir and
// the relation schema src, and writes tuples (≤ 1000 per transaction);
// API callers need a token of c.
func newWorld(ctx context.Context, store storage.RelationStore, polDir, schemaSrc string, tuples []string, limits rebac.Limits, c caller) (*world, error) {
	w := &world{caller: c}
	fail := func(err error) (*world, error) {
		w.close()
		return nil, err
	}
	set, err := policy.Load(polDir)
	if err != nil {
		return fail(fmt.Errorf("load policies: %w", err))
	}
	w.set = set
	schema, err := rebac.ParseSchema("bench.zed", []byte(schemaSrc))
	if err != nil {
		return fail(fmt.Errorf("relation schema: %w", err))
	}
	if err := writeTuples(ctx, store, schema, tuples); err != nil {
		return fail(err)
	}
	w.checker = rebac.NewChecker(schema, store, limits)
	v, err := w.caller.verifier()
	if err != nil {
		return fail(err)
	}
	w.closers = append(w.closers, v.Close)
	dlog, err := decisionlog.New(decisionlog.Config{Writer: io.Discard, Ring: 1000, Sample: 1}, nil)
	if err != nil {
		return fail(fmt.Errorf("decision log: %w", err))
	}
	w.closers = append(w.closers, func() { _ = dlog.Close() })
	w.svc, err = authz.New(authz.Options{Policies: policy.NewHolder(set), Store: store, Checker: w.checker,
		Callers: v, Log: dlog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		return fail(fmt.Errorf("authz service: %w", err))
	}
	return w, nil
}

// writeTuples validates and touches tuples, 1000 per transaction.
func writeTuples(ctx context.Context, store storage.RelationStore, schema *rebac.Schema, tuples []string) error {
	for start := 0; start < len(tuples); start += 1000 {
		var ws []storage.TupleWrite
		for _, s := range tuples[start:min(start+1000, len(tuples))] {
			t, err := rebac.ParseTuple(s)
			if err != nil {
				return fmt.Errorf("tuple %s: %w", s, err)
			}
			if err := schema.ValidateTuple(t); err != nil {
				return fmt.Errorf("tuple %s: %w", s, err)
			}
			ws = append(ws, storage.TupleWrite{Op: storage.TupleTouch, Tuple: t})
		}
		if _, err := store.WriteTuples(ctx, ws); err != nil {
			return fmt.Errorf("write tuples: %w", err)
		}
	}
	return nil
}

// policyDir is where size n's policies are generated under dir.
func policyDir(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf("policies-%d", n)) }
