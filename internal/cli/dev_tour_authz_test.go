package cli

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
)

// A printed delegated decision: "    ⇒ allow description" then the command.
var authzStepRE = regexp.MustCompile(`^\s+⇒ (allow|deny ) (.+)$`)

// parseAuthzTour returns every ⇒ step of a printed tour.
func parseAuthzTour(t *testing.T, tour string) []authzStep {
	t.Helper()
	var out []authzStep
	sc := bufio.NewScanner(strings.NewReader(tour))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		m := authzStepRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if !sc.Scan() {
			t.Fatalf("step %q has no command", m[2])
		}
		out = append(out, authzStep{allow: m[1] == "allow", desc: m[2], cmd: strings.TrimSpace(sc.Text())})
	}
	return out
}

// TestAuthzTourParses: the printed decisions parse with the tour runner's
// subset of sh and are POSTs of JSON to the authorization service.
func TestAuthzTourParses(t *testing.T) {
	f := devFlags{issuer: "http://localhost:8080", adminListen: "127.0.0.1:8081", dataDir: "d", authzListen: "127.0.0.1:8002"}
	var b strings.Builder
	printAuthzTour(&b, f, devState{DemoOrdersSecret: "ghs_o"})
	steps := parseAuthzTour(t, b.String())
	if len(steps) < 5 {
		t.Fatalf("%d decision steps:\n%s", len(steps), b.String())
	}
	allows := 0
	for _, s := range steps {
		words, err := shellWords(s.cmd, map[string]string{"AUTHZ": "z"})
		if err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
		req, err := apiRequest(words)
		if err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
		body, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.URL.String() != "http://127.0.0.1:8002/authorize" ||
			req.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
			t.Errorf("%q: %s %s %q", s.desc, req.Method, req.URL, body)
		}
		if s.allow {
			allows++
		}
	}
	if allows == 0 || allows == len(steps) {
		t.Errorf("the tour should show allows and denies: %d of %d allow", allows, len(steps))
	}
	for _, want := range []string{"demo-orders:ghs_o", "d/authz/policies", "d/authz/candidate", "--disagreements"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("authz tour lacks %q", want)
		}
	}
}

// checkAuthzTour asks every printed decision of a running gatehouse dev
// (after checkTourSteps, which ran the replication step) and checks the
// printed answer, a reason and the determining facts; then that the shadow
// set's disagreement is visible in GET /decisions, the metrics and the log
// file.
func checkAuthzTour(t *testing.T, tour, authzURL, adminURL, logFile string, vars map[string]string) {
	t.Helper()
	steps := parseAuthzTour(t, tour)
	if len(steps) < 5 {
		t.Fatalf("%d decision steps", len(steps))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, s := range steps {
		if !strings.Contains(s.cmd, authzURL+"/authorize") {
			t.Errorf("%q does not ask %s: %s", s.desc, authzURL, s.cmd)
		}
		words, err := shellWords(s.cmd, vars)
		if err != nil {
			t.Fatal(err)
		}
		req, err := apiRequest(words)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Allow      bool     `json:"allow"`
			Reason     string   `json:"reason"`
			DecisionID string   `json:"decision_id"`
			Version    string   `json:"policy_version"`
			Policies   []string `json:"policies"`
		}
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d, %v", s.desc, resp.StatusCode, err)
		}
		if d.Allow != s.allow || d.Reason == "" || !strings.HasPrefix(d.DecisionID, "dec_") || d.Version == "" {
			t.Errorf("%s: %+v, the tour says allow=%v", s.desc, d, s.allow)
		}
		if s.allow && len(d.Policies) == 0 {
			t.Errorf("%s: an allow without the policy that decided", s.desc)
		}
	}
	t.Logf("%d delegated decisions checked", len(steps))
	// The shadow set disagreed with alice's read of o-2002.
	get := func(u, tok string) string {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	var recent struct {
		Decisions []decisionlog.Entry `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(get(authzURL+"/decisions?limit=50", vars["AUTHZ"])), &recent); err != nil {
		t.Fatal(err)
	}
	disagreed := false
	for _, e := range recent.Decisions {
		if e.Shadow != nil && e.Shadow.Disagree && e.Action == "read" && e.Resource.ID == "o-2002" && e.Allow && !e.Shadow.Allow {
			disagreed = true
		}
	}
	if !disagreed {
		t.Errorf("no shadow disagreement on alice's read of o-2002 in GET /decisions (%d entries)", len(recent.Decisions))
	}
	metrics := get(adminURL+"/metrics", "")
	if !regexp.MustCompile(`(?m)^gatehouse_authz_shadow_disagreements_total(\{[^}]*\})? [1-9]`).MatchString(metrics) {
		t.Error("gatehouse_authz_shadow_disagreements_total is not counting")
	}
	// The log file has it too (flushed within 200 ms).
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := os.Open(logFile)
		if err == nil {
			es, rerr := decisionlog.Read(f, decisionlog.Filter{Disagreements: true})
			f.Close()
			if rerr != nil {
				t.Fatalf("decision log: %v", rerr)
			}
			if len(es) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disagreement in %s: %v", logFile, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
