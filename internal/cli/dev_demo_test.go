package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/nativelogin"
)

// checkDevTour follows the "Alice and her orders" tour against a running
// gatehouse dev: the tour names the gateway, the services and the secrets,
// and every ✓/✗ step, run as printed with the given tokens (ALICE, BOB,
// CAROL, SERVICE, BILLING), answers the printed status through the gateway.
func checkDevTour(t *testing.T, tour string, st devState, gatewayURL, authorizerURL, authzURL string, vars map[string]string) {
	t.Helper()
	for _, want := range []string{gatewayURL + "/orders", gatewayURL + "/payments", "demo-billing:" + st.DemoBillingSecret,
		"demo-service:" + st.DemoServiceSecret, "go run ./examples/login", "carol / " + demoCarolPassword,
		authorizerURL + "/forward-auth", "-> 403", "-> 401", "-> 404", "-> 429"} {
		if !strings.Contains(tour, want) {
			t.Errorf("tour lacks %q", want)
		}
	}
	// The tour is printed once the demo services have keys, but the
	// gateway's verifiers may still be fetching theirs (it answers 503
	// until then): wait for its readiness, as a person would not notice.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(gatewayURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never became ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkTourSteps(t, tour, vars, gatewayURL, authorizerURL, authzURL)
}

// TestDevStateGainsBillingSecret: a data directory from before the billing
// demo gets a billing secret, and the file stays 0600 with the old secrets.
func TestDevStateGainsBillingSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev-secrets.json")
	old := `{"key_encryption_key":"k","pepper":"p","admin_token":"gha_x","demo_web_secret":"w","demo_service_secret":"s","demo_api_secret":"a"}`
	if err := os.WriteFile(p, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := loadDevState(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.DemoBillingSecret, "ghs_") || st.KEK != "k" || st.DemoServiceSecret != "s" {
		t.Fatalf("%+v", st)
	}
	var again devState
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &again); err != nil || again != st {
		t.Fatalf("not persisted: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if st2, err := loadDevState(p); err != nil || st2 != st {
		t.Fatalf("second load changed the state: %v", err)
	}
}

// A printed tour step: "    ✓ description      -> 200" then the command.
var tourStepRE = regexp.MustCompile(`^\s+([✓✗]) (.+?)\s+-> (\d{3})$`)

// A flood: one api call whose URL has a curl range [1-N] (N requests),
// statuses counted.
var tourLoopRE = regexp.MustCompile(`^(.+)\[1-(\d+)\](.*) \| grep -o 'HTTP \[0-9\]\*' \| sort \| uniq -c$`)

type parsedStep struct {
	ok   bool
	desc string
	want int
	cmd  string
}

// parseTour returns every ✓/✗ step of a printed tour, in order.
func parseTour(t *testing.T, tour string) []parsedStep {
	t.Helper()
	var steps []parsedStep
	sc := bufio.NewScanner(strings.NewReader(tour))
	for sc.Scan() {
		m := tourStepRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if !sc.Scan() {
			t.Fatalf("step %q has no command", m[2])
		}
		want, _ := strconv.Atoi(m[3])
		steps = append(steps, parsedStep{ok: m[1] == "✓", desc: m[2], want: want, cmd: strings.TrimSpace(sc.Text())})
	}
	return steps
}

// errShell is returned for a command line the tour runner does not accept.
var errShell = errors.New("tour: unsupported shell syntax")

// shellWords splits a command line as sh does for the subset the tour uses:
// blanks separate words, '…' is literal, "…" and bare words expand $NAME
// from vars (an unknown name is an error: the tour must not use a variable
// the test does not know). Anything else shell-special is refused.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // line[i] == '$'
		j := i + 1
		for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= 'a' && line[j] <= 'z' || j > i+1 && line[j] >= '0' && line[j] <= '9') {
			j++
		}
		if j == i+1 {
			return 0, fmt.Errorf("%w: lone $ at %d", errShell, i)
		}
		v, ok := vars[line[i+1:j]]
		if !ok {
			return 0, fmt.Errorf("%w: unknown variable %s", errShell, line[i+1:j])
		}
		cur.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			i++
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated '", errShell)
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(line) {
					return nil, fmt.Errorf("%w: unterminated \"", errShell)
				}
				if line[i] == '"' {
					i++
					break
				}
				if strings.IndexByte("\\`", line[i]) >= 0 {
					return nil, fmt.Errorf("%w: %q inside \"", errShell, line[i])
				}
				if line[i] == '$' {
					j, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = j
					continue
				}
				cur.WriteByte(line[i])
				i++
			}
		case c == '$':
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord, i = true, j
		case strings.IndexByte("\\`;&|<>()*?[]{}#~!\n\r", c) >= 0:
			return nil, fmt.Errorf("%w: %q", errShell, c)
		default:
			cur.WriteByte(c)
			inWord, i = true, i+1
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// apiRequest turns `api TOKEN curl-args…` into the request curl would send.
// Only the flags the tour uses are accepted.
func apiRequest(words []string) (*http.Request, error) {
	if len(words) < 3 || words[0] != "api" {
		return nil, fmt.Errorf("%w: not an api call", errShell)
	}
	token, method, body, target := words[1], "", "", ""
	hasBody := false
	var hdr [][2]string
	for i := 2; i < len(words); i++ {
		w := words[i]
		needArg := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%w: %s needs a value", errShell, w)
			}
			i++
			return words[i], nil
		}
		var err error
		switch {
		case w == "-X":
			method, err = needArg()
		case w == "-d":
			body, err = needArg()
			hasBody = true
		case w == "-o":
			_, err = needArg()
		case w == "-i":
		case w == "-H":
			var h string
			if h, err = needArg(); err == nil {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return nil, fmt.Errorf("%w: header %q", errShell, h)
				}
				hdr = append(hdr, [2]string{k, strings.TrimSpace(v)})
			}
		case strings.HasPrefix(w, "http://") && target == "":
			target = w
		default:
			return nil, fmt.Errorf("%w: argument %q", errShell, w)
		}
		if err != nil {
			return nil, err
		}
	}
	if method == "" {
		method = http.MethodGet
		if hasBody {
			method = http.MethodPost
		}
	}
	if target == "" {
		return nil, fmt.Errorf("%w: no URL", errShell)
	}
	var rd io.Reader
	if hasBody {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("tour: %w", err)
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range hdr {
		if strings.EqualFold(h[0], "Host") {
			req.Host = h[1]
			continue
		}
		if strings.EqualFold(h[0], "Content-Type") {
			req.Header.Set(h[0], h[1]) // curl: -H replaces the type -d implies
			continue
		}
		req.Header.Add(h[0], h[1])
	}
	return req, nil
}

// runTourStep executes a step's command and returns the statuses seen.
func runTourStep(t *testing.T, cmd string, vars map[string]string) []int {
	t.Helper()
	cmds := []string{cmd}
	if m := tourLoopRE.FindStringSubmatch(cmd); m != nil {
		n, _ := strconv.Atoi(m[2])
		cmds = nil
		for i := range n {
			cmds = append(cmds, m[1]+strconv.Itoa(i+1)+m[3])
		}
	}
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var codes []int
	for _, cmd := range cmds {
		words, err := shellWords(cmd, vars)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		req, err := apiRequest(words)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	return codes
}

// floodUntil sends a flood step's request from a few workers at once until
// one is answered want (or within passes) and returns the statuses in the
// order they arrived.
func floodUntil(t *testing.T, cmd string, vars map[string]string, want int, within time.Duration) []int {
	t.Helper()
	m := tourLoopRE.FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("not a flood: %s", cmd)
	}
	words, err := shellWords(m[1]+"1"+m[3], vars)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	var mu sync.Mutex
	var codes []int
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, err := apiRequest(words)
				if err != nil {
					t.Errorf("%s: %v", cmd, err)
					cancel()
					return
				}
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("%s: %v", cmd, err)
						cancel()
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes = append(codes, resp.StatusCode)
				mu.Unlock()
				if resp.StatusCode != http.StatusOK {
					cancel() // refused (or failed): the flood ends here
					return
				}
			}
		})
	}
	wg.Wait()
	return codes
}

// checkTourSteps runs every step of the printed tour against the running
// gatehouse dev and checks the printed status. A loop must end in the
// printed status after 200s only. Every URL must be the gateway's or the
// authorizer's: the tour goes through the gateway.
func checkTourSteps(t *testing.T, tour string, vars map[string]string, bases ...string) {
	t.Helper()
	steps := parseTour(t, tour)
	if len(steps) < 15 {
		t.Fatalf("only %d tour steps parsed", len(steps))
	}
	for _, s := range steps {
		if !slices.ContainsFunc(bases, func(b string) bool { return strings.Contains(s.cmd, b+"/") }) {
			t.Errorf("step %q bypasses the gateway: %s", s.desc, s.cmd)
		}
		codes := runTourStep(t, s.cmd, vars)
		last := codes[len(codes)-1]
		if len(codes) > 1 && !slices.Contains(codes, s.want) && !slices.ContainsFunc(codes, func(c int) bool { return c != http.StatusOK }) {
			// All printed requests passed: a loaded machine sent them slower
			// than the limit refills. The limit must still refuse a faster
			// flood of the same request.
			more := floodUntil(t, s.cmd, vars, s.want, 20*time.Second)
			t.Logf("%s: the %d printed requests all passed (a slow machine); a faster flood ended after %d more", s.desc, len(codes), len(more))
			codes = append(codes, more...)
		}
		if len(codes) > 1 {
			i := slices.Index(codes, s.want)
			if i < 0 || slices.ContainsFunc(codes[:i], func(c int) bool { return c != http.StatusOK }) {
				t.Errorf("%s: statuses %v, want 200s then %d", s.desc, codes, s.want)
			}
			continue
		}
		if last != s.want {
			t.Errorf("%s: HTTP %d, the tour says %d\n  %s", s.desc, last, s.want, s.cmd)
		}
	}
}

var (
	inputRE = regexp.MustCompile(`<input[^>]*>`)
	attrRE  = regexp.MustCompile(`([a-zA-Z_-]+)="([^"]*)"`)
)

// formValue returns the value of the named input of an HTML page.
func formValue(page, name string) string {
	for _, tag := range inputRE.FindAllString(page, -1) {
		attrs := map[string]string{}
		for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
			attrs[m[1]] = html.UnescapeString(m[2])
		}
		if attrs["name"] == name {
			return attrs["value"]
		}
	}
	return ""
}

// devLogin does what step 5 of the tour asks a person to do: the terminal
// login of examples/login (code flow with PKCE, loopback redirect), the
// browser being a form-filling HTTP client. It returns the access token.
func devLogin(t *testing.T, issuer, username, password string) string {
	t.Helper()
	iss, _ := url.Parse(issuer)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != iss.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := nativelogin.Login(ctx, nativelogin.Config{Issuer: issuer, ClientID: "demo-cli",
		Scopes:    []string{"openid", "orders:read", "orders:write", "payments:write"},
		Resources: []string{ordersAudience, paymentsAudience}, ForceLogin: true, Timeout: 30 * time.Second,
		OpenURL: func(authURL string) error {
			resp, err := browser.Get(authURL)
			for i := 0; err == nil && i < 4; i++ {
				if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
					resp.Body.Close()
					cb, err := http.Get(loc) // the loopback callback of nativelogin
					if err != nil {
						return err
					}
					return cb.Body.Close()
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				page := string(b)
				form := url.Values{"csrf": {formValue(page, "csrf")}, "auth_request": {formValue(page, "auth_request")}}
				switch {
				case strings.Contains(page, `id="login-form"`):
					form.Set("username", username)
					form.Set("password", password)
					resp, err = browser.PostForm(issuer+"/login", form)
				case strings.Contains(page, `id="allow"`):
					form.Set("decision", "allow")
					resp, err = browser.PostForm(issuer+"/consent", form)
				default:
					return fmt.Errorf("unexpected page %d: %.300s", resp.StatusCode, page)
				}
			}
			if err != nil {
				return err
			}
			return errors.New("login: too many pages")
		}})
	if err != nil {
		t.Fatalf("login as %s: %v", username, err)
	}
	return tok.AccessToken
}
