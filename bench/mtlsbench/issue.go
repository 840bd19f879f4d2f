package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

type issueOptions struct {
	url  string
	dir  string
	skip int
	pool int
	loadOpts
}

func parseIssue(args []string, stderr io.Writer) (issueOptions, error) {
	var o issueOptions
	fs := flag.NewFlagSet("mtlsbench issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "https://<loopback IP>:<port> of the CA API (required)")
	fs.StringVar(&o.dir, "dir", "", "the ca subcommand's -dir: join tokens and bundle (required)")
	fs.IntVar(&o.skip, "skip", 0, "join tokens already spent by earlier runs (the first used is line skip+1)")
	fs.IntVar(&o.pool, "pool", 1024, "keys and CSRs generated before the clock starts, used in turn")
	o.register(fs, "workers, each with its own keep-alive mTLS connection and SVID")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	p := append(argProblems(fs, o.dir), checkLoad(o.c, o.d, o.warmup)...)
	if _, err := checkURL(o.url); err != nil {
		p = append(p, err.Error())
	}
	if o.skip < 0 {
		p = append(p, "-skip: must not be negative")
	}
	if o.pool < 1 || o.pool > 1_000_000 {
		p = append(p, "-pool: must be 1..1000000")
	}
	if o.timeout <= 0 || o.timeout > time.Minute {
		p = append(p, "-timeout: must be in (0, 1m]")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	o.url, _ = checkURL(o.url)
	return o, nil
}

// csrPool is a pool of P-256 keys with their CSRs (DER) and request bodies.
type csrPool struct {
	keys   []crypto.Signer
	ders   [][]byte
	bodies [][]byte // {"csr": "<base64 DER>"}
}

func newCSRPool(n int) (*csrPool, error) {
	p := &csrPool{}
	for range n {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return nil, fmt.Errorf("csr: %w", err)
		}
		body, err := json.Marshal(map[string]string{"csr": base64.StdEncoding.EncodeToString(der)})
		if err != nil {
			return nil, err
		}
		p.keys, p.ders, p.bodies = append(p.keys, key), append(p.ders, der), append(p.bodies, body)
	}
	return p, nil
}

func readTokens(name string, skip, n int) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("join tokens: %w", err)
	}
	defer f.Close()
	var toks []string
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan() && len(toks) < n; i++ {
		if i >= skip {
			toks = append(toks, strings.TrimSpace(sc.Text()))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("join tokens: %w", err)
	}
	if len(toks) < n {
		return nil, fmt.Errorf("join tokens: need %d after skipping %d, the file has %d in all (raise ca -tokens)", n, skip, skip+len(toks))
	}
	return toks, nil
}

// svidAnswer is the part of the POST /v1/svid answer the bench reads.
type svidAnswer struct {
	SPIFFEID string   `json:"spiffe_id"`
	X509SVID []string `json:"x509_svid"`
}

func newTransport(cfg *tls.Config, timeout time.Duration, h2 bool) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // never leave loopback through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   h2,
	}
}

// postSVID sends one POST /v1/svid and returns the body of a 200 answer.
func postSVID(ctx context.Context, client *http.Client, url, authz string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/svid", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	return b, nil
}

// bootstrap gets one SVID with a join token, for the pool's key i.
func bootstrap(ctx context.Context, client *http.Client, url, token string, pool *csrPool, i int) (*x509svid.SVID, error) {
	b, err := postSVID(ctx, client, url, "JoinToken "+token, pool.bodies[i])
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var a svidAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("bootstrap answer: %w", err)
	}
	var certs []*x509.Certificate
	for _, s := range a.X509SVID {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap answer: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("bootstrap answer: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("bootstrap answer: no certificates")
	}
	id, err := x509svid.IDFromCert(certs[0])
	if err != nil || id.String() != a.SPIFFEID {
		return nil, fmt.Errorf("bootstrap answer: leaf ID %v does not match spiffe_id %q (%v)", id, a.SPIFFEID, err)
	}
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: pool.keys[i]}, nil
}

func runIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseIssue(args, stderr)
	if err != nil {
		return err
	}
	td := spiffeid.RequireTrustDomainFromString(benchTD)
	sb, err := spiffebundle.Load(td, filepath.Join(o.dir, bundleFile))
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	bundle := x509bundle.FromX509Authorities(td, sb.X509Authorities())
	caID := spiffeid.RequireFromPath(td, "/gatehouse/ca")
	toks, err := readTokens(filepath.Join(o.dir, tokensFile), o.skip, o.c)
	if err != nil {
		return err
	}
	pool, err := newCSRPool(max(o.pool, o.c))
	if err != nil {
		return err
	}
	boot := &http.Client{Timeout: o.timeout,
		Transport: newTransport(tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(caID)), o.timeout, false)}
	defer boot.CloseIdleConnections()
	clients := make([]*http.Client, o.c)
	for w := range o.c {
		svid, err := bootstrap(ctx, boot, o.url, toks[w], pool, w)
		if err != nil {
			return err
		}
		cfg := tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(caID))
		clients[w] = &http.Client{Timeout: o.timeout, Transport: newTransport(cfg, o.timeout, false)}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	stride := max(len(pool.bodies)/o.c, 1)
	res := closedLoop(ctx, o.c, o.warmup, o.d, func(ctx context.Context, w, n int) error {
		b, err := postSVID(ctx, clients[w], o.url, "", pool.bodies[(w*stride+n)%len(pool.bodies)])
		if err == nil && !bytes.Contains(b, []byte(`"x509_svid"`)) {
			err = fmt.Errorf("answer without x509_svid: %.200s", b)
		}
		return err
	})
	res.Bench, res.Target, res.Bootstrap = "issue", "renewal", o.c
	return json.NewEncoder(stdout).Encode(res)
}
