// Command load is Gatehouse's load generator: it drives the token endpoint
// (client credentials), the introspection endpoint, one URL with GET (an
// upstream or the gateway, with an optional bearer token), or one URL with a
// fixed JSON body POSTed (the authorization service) of one server on a
// loopback address with a fixed number of workers for a fixed time, and
// prints one JSON line with throughput and latency percentiles.
//
// By default every worker sends its next request as soon as the previous one
// is answered (closed loop: the measure of the saturating throughput). With
// -rate N the requests follow a fixed schedule of N per second in total
// (open loop, as wrk2 does): request k is due at start + k/N, the next free
// worker sends it when it is due, and its latency is counted from when it
// was due, not from when it was sent, so a server that falls behind is
// charged for the queueing it causes (no coordinated omission). At most -c
// requests are in flight; lag_p99_ms reports how late requests left, and
// requests still due when the window ends are not sent (an rps below -rate
// shows the shortfall).
//
// It is deliberately small and stdlib-only: one shared keep-alive transport,
// one preallocated latency slice per worker, no allocation-heavy reporting
// while measuring. It refuses any host that is not loopback, so it cannot be
// pointed at someone else's server by mistake, and it always stops by itself.
//
//	load -url http://127.0.0.1:8080 -mode cc -client-id svc -client-secret S
//	load -url http://127.0.0.1:8080 -mode introspect -client-id api -client-secret S2 -cc-id svc -cc-secret S
//	load -url http://127.0.0.1:8081/api/hello -mode get -token JWT -c 64 -d 20s
//	load -url http://127.0.0.1:8081/api/hello -mode get -token JWT -c 64 -d 20s -rate 5000
//	load -url http://127.0.0.1:8082/authorize -mode post -body-file req.json -token JWT -expect-substring '"allow":true'
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint paths under the issuer URL.
const (
	tokenPath      = "/oauth/token"
	introspectPath = "/oauth/introspect"
)

type options struct {
	baseURL      string
	mode         string
	clientID     string
	clientSecret string
	ccID         string
	ccSecret     string
	token        string
	scope        string
	concurrency  int
	duration     time.Duration
	warmup       time.Duration
	timeout      time.Duration
	rate         float64 // requests per second in total; 0: closed loop
	bodyFile     string  // post mode: the JSON body
	expect       string  // post mode: a substring a success must contain
}

// Result is the JSON line printed at the end of a run.
type Result struct {
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	// Sent counts every request, warm-up included: the server's CPU time
	// over the whole run divided by Sent is its CPU cost per request.
	Sent int `json:"sent"`
	// ClientCPUUs is this tool's own CPU time per sent request (µs): what
	// the load generator takes from a machine it shares with the server.
	ClientCPUUs float64 `json:"client_cpu_us_per_req"`
	RPS         float64 `json:"rps"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	// Rate is the -rate schedule (requests/s), absent in closed loop.
	Rate float64 `json:"rate,omitempty"`
	// LagP99Ms is the p99 of how late measured requests left after they
	// were due (paced runs only): a wake-up delay, or every worker busy.
	LagP99Ms float64 `json:"lag_p99_ms,omitempty"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	base, err := checkURL(o.baseURL)
	if err != nil {
		return err
	}
	client := newClient(o.concurrency, o.timeout)
	defer client.CloseIdleConnections()

	// Hard upper bound on the whole run, whatever the server does.
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+o.timeout+10*time.Second)
	defer cancel()

	req, err := buildRequest(ctx, client, base, o)
	if err != nil {
		return err
	}
	cpu0 := processCPU()
	res := measure(ctx, client, req, o, stderr)
	if cpu := processCPU() - cpu0; res.Sent > 0 && cpu > 0 {
		res.ClientCPUUs = round(float64(cpu.Microseconds())/float64(res.Sent), 1)
	}
	return json.NewEncoder(stdout).Encode(res)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.baseURL, "url", "http://127.0.0.1:8080", "issuer base URL of the server; get mode: the URL to GET (loopback only)")
	fs.StringVar(&o.mode, "mode", "cc", "cc (client-credentials issuance), introspect, get (GET -url, expect 200) or post (POST -body-file as JSON to -url, expect 200)")
	fs.StringVar(&o.clientID, "client-id", "", "client authenticating the measured requests")
	fs.StringVar(&o.clientSecret, "client-secret", "", "its secret")
	fs.StringVar(&o.ccID, "cc-id", "", "introspect mode: client_credentials client that mints the token to introspect")
	fs.StringVar(&o.ccSecret, "cc-secret", "", "its secret")
	fs.StringVar(&o.token, "token", "", "introspect mode: token to introspect (instead of -cc-id/-cc-secret); get and post modes: bearer token to send (optional)")
	fs.StringVar(&o.bodyFile, "body-file", "", "post mode: file holding the JSON body sent with every request (at most 1 MiB)")
	fs.StringVar(&o.expect, "expect-substring", "", "post mode: an answer without this substring counts as an error (e.g. '\"allow\":true')")
	fs.StringVar(&o.scope, "scope", "", "scope requested in cc mode (empty: none)")
	fs.IntVar(&o.concurrency, "c", 16, "concurrent workers (and connections)")
	fs.DurationVar(&o.duration, "d", 20*time.Second, "measured duration")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before -d")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.Float64Var(&o.rate, "rate", 0, "pace requests at this many per second in total (open loop); 0: closed loop")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if o.mode != "cc" && o.mode != "introspect" && o.mode != "get" && o.mode != "post" {
		p = append(p, "-mode: must be cc, introspect, get or post")
	}
	bare := o.mode == "get" || o.mode == "post" // no client authentication
	if !bare && (o.clientID == "" || o.clientSecret == "") {
		p = append(p, "-client-id and -client-secret are required")
	}
	if o.mode == "post" && o.bodyFile == "" {
		p = append(p, "post mode needs -body-file")
	}
	if o.mode != "post" && (o.bodyFile != "" || o.expect != "") {
		p = append(p, "-body-file and -expect-substring are for post mode only")
	}
	if bare && !validToken(o.token) {
		p = append(p, "-token: must be a token68 (RFC 6750 §2.1) without spaces or control characters")
	}
	// NaN fails both comparisons, so it is refused too.
	if !(o.rate >= 0 && o.rate <= 1e6) {
		p = append(p, "-rate: must be in [0, 1e6]")
	}
	if o.mode == "introspect" && o.token == "" && (o.ccID == "" || o.ccSecret == "") {
		p = append(p, "introspect mode needs -token, or -cc-id and -cc-secret")
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		p = append(p, "-c: must be 1..1024")
	}
	if o.duration <= 0 || o.duration > time.Hour {
		p = append(p, "-d: must be in (0, 1h]")
	}
	if o.warmup < 0 || o.warmup > 10*time.Minute {
		p = append(p, "-warmup: must be in [0, 10m]")
	}
	if o.timeout <= 0 || o.timeout > time.Minute {
		p = append(p, "-timeout: must be in (0, 1m]")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// validToken reports whether t (possibly empty) is a token68, the only form
// a bearer token may take in an Authorization header.
func validToken(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
			return false
		}
	}
	return true
}

// checkURL accepts only http(s) URLs whose host is a loopback address or
// "localhost", with no query or fragment, and returns it without a trailing
// slash.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("-url: scheme must be http or https")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("-url: no user info, query or fragment")
	}
	if !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("-url: host %q is not loopback; this tool only loads local servers", u.Hostname())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newClient(c int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // never leave loopback through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		MaxConnsPerHost:     c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// request is everything a worker needs to send one measured request; the
// body is shared read-only and wrapped in a fresh reader per request.
type request struct {
	method     string // POST when empty
	url        string
	auth       string
	body       []byte
	wantActive bool // introspect: a 2xx answer must say "active":true
	wantStatus int  // when not 0, the only status that counts as a success
	// contentType of the body; "" means a form.
	contentType string
	want        []byte // when not nil, a success must contain it
}

// maxBody bounds a post-mode body file.
const maxBody = 1 << 20

// readBody reads a post-mode body file of at most maxBody bytes.
func readBody(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("-body-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("-body-file: %w", err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("-body-file: larger than %d bytes", maxBody)
	}
	if !json.Valid(b) {
		return nil, errors.New("-body-file: not valid JSON")
	}
	return b, nil
}

func basicAuth(id, secret string) string {
	// RFC 6749 §2.3.1: form-encode both parts before base64.
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
}

func buildRequest(ctx context.Context, client *http.Client, base string, o options) (request, error) {
	switch o.mode {
	case "get":
		r := request{method: http.MethodGet, url: base, wantStatus: http.StatusOK}
		if o.token != "" {
			r.auth = "Bearer " + o.token
		}
		return r, nil
	case "post":
		body, err := readBody(o.bodyFile)
		if err != nil {
			return request{}, err
		}
		r := request{url: base, body: body, contentType: "application/json", wantStatus: http.StatusOK}
		if o.expect != "" {
			r.want = []byte(o.expect)
		}
		if o.token != "" {
			r.auth = "Bearer " + o.token
		}
		return r, nil
	case "cc":
		return request{url: base + tokenPath, auth: basicAuth(o.clientID, o.clientSecret), body: ccForm(o.scope)}, nil
	}
	tok := o.token
	if tok == "" {
		var err error
		if tok, err = fetchToken(ctx, client, base, o); err != nil {
			return request{}, err
		}
	}
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	return request{url: base + introspectPath, auth: basicAuth(o.clientID, o.clientSecret),
		body: []byte(form.Encode()), wantActive: true}, nil
}

func ccForm(scope string) []byte {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return []byte(form.Encode())
}

// fetchToken mints the one access token introspect mode asks about.
func fetchToken(ctx context.Context, client *http.Client, base string, o options) (string, error) {
	status, body, err := send(ctx, client, request{url: base + tokenPath, auth: basicAuth(o.ccID, o.ccSecret), body: ccForm(o.scope)})
	if err != nil {
		return "", fmt.Errorf("fetch token: %w", err)
	}
	if status/100 != 2 {
		return "", fmt.Errorf("fetch token: HTTP %d: %s", status, clip(body))
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("fetch token: no access_token in answer: %s", clip(body))
	}
	return tr.AccessToken, nil
}

// send sends one request: a form POST, or a GET when r.method says so.
func send(ctx context.Context, client *http.Client, r request) (int, []byte, error) {
	var req *http.Request
	var err error
	if r.method == http.MethodGet {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
		if err == nil {
			ct := r.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
		}
	}
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	// Bounded read; draining lets the connection be reused.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

func clip(b []byte) string {
	const max = 512
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

var activeTrue = []byte(`"active":true`)

// measure runs o.concurrency workers for o.warmup+o.duration. Requests that
// start (or, paced, are due) inside the measured window count (their latency
// and errors); those of the warm-up do not. Throughput is counted requests
// over o.duration.
func measure(ctx context.Context, client *http.Client, r request, o options, stderr io.Writer) Result {
	start := time.Now()
	windowStart := start.Add(o.warmup)
	end := windowStart.Add(o.duration)
	// Room for ~50k requests/s in total without growing while measuring.
	per := max(1024, int(o.duration.Seconds()*50000)/o.concurrency)
	lat := make([][]time.Duration, o.concurrency)
	lag := make([][]time.Duration, o.concurrency)
	errs := make([]int, o.concurrency)
	sent := make([]int, o.concurrency)
	var ticket atomic.Int64 // paced: the next scheduled request
	var reported atomic.Bool
	var wg sync.WaitGroup
	for w := range o.concurrency {
		lat[w] = make([]time.Duration, 0, per)
		if o.rate > 0 {
			lag[w] = make([]time.Duration, 0, per)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var due time.Time
				if o.rate > 0 {
					due = start.Add(time.Duration(float64(ticket.Add(1)-1) * float64(time.Second) / o.rate))
					if !due.Before(end) {
						return
					}
					time.Sleep(time.Until(due)) // returns at once when late
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if o.rate == 0 {
					due = t0
				}
				status, body, err := send(ctx, client, r)
				d := time.Since(due)
				sent[w]++
				ok := err == nil && status/100 == 2 && (r.wantStatus == 0 || status == r.wantStatus) &&
					(!r.wantActive || bytes.Contains(body, activeTrue)) && (r.want == nil || bytes.Contains(body, r.want))
				if due.Before(windowStart) {
					continue
				}
				if !ok {
					errs[w]++
					if reported.CompareAndSwap(false, true) {
						if err != nil {
							fmt.Fprintf(stderr, "load: first error: %v\n", err)
						} else {
							fmt.Fprintf(stderr, "load: first error: HTTP %d: %s\n", status, clip(body))
						}
					}
					continue
				}
				lat[w] = append(lat[w], d)
				if o.rate > 0 {
					lag[w] = append(lag[w], t0.Sub(due))
				}
			}
		}()
	}
	wg.Wait()
	return summarize(o, lat, lag, errs, sent)
}

func summarize(o options, lat, lag [][]time.Duration, errs, sent []int) Result {
	all := slices.Concat(lat...)
	slices.Sort(all)
	nerr, nsent := 0, 0
	for w := range errs {
		nerr += errs[w]
		nsent += sent[w]
	}
	secs := o.duration.Seconds()
	res := Result{
		Mode: o.mode, Concurrency: o.concurrency, DurationS: secs,
		Requests: len(all), Errors: nerr, Sent: nsent,
		RPS:   round(float64(len(all))/secs, 1),
		P50Ms: round(ms(percentile(all, 0.50)), 3),
		P99Ms: round(ms(percentile(all, 0.99)), 3),
	}
	if o.rate > 0 {
		lags := slices.Concat(lag...)
		slices.Sort(lags)
		res.Rate = o.rate
		res.LagP99Ms = round(ms(percentile(lags, 0.99)), 3)
	}
	return res
}

// percentile returns the nearest-rank q-quantile of sorted, 0 when empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
