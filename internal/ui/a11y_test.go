package ui

import (
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// contrastPairs are the text/background pairs the stylesheet uses.
var contrastPairs = [][2]string{
	{"--fg", "--bg"},
	{"--fg", "--card"},
	{"--muted", "--card"},
	{"--muted", "--bg"},
	{"--on-primary", "--primary"},
	{"--on-primary", "--primary-hover"},
	{"--error-fg", "--error-bg"},
}

func TestContrast(t *testing.T) {
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(--[a-z-]+):\s*(#[0-9a-fA-F]{6});`).FindAllStringSubmatch(string(stylesheet), -1) {
		vars[m[1]] = m[2]
	}
	for _, p := range contrastPairs {
		fg, bg := vars[p[0]], vars[p[1]]
		if fg == "" || bg == "" {
			t.Fatalf("stylesheet lacks %s or %s", p[0], p[1])
		}
		if r := contrast(t, fg, bg); r < 4.5 {
			t.Errorf("%s (%s) on %s (%s): contrast %.2f, want >= 4.5", p[0], fg, p[1], bg, r)
		}
	}
	// Non-text UI (input borders, focus ring) needs 3:1 (WCAG 1.4.11).
	for _, c := range []string{"--border", "--focus"} {
		if r := contrast(t, vars[c], vars["--card"]); r < 3 {
			t.Errorf("%s on --card: contrast %.2f, want >= 3", c, r)
		}
	}
	if !strings.Contains(string(stylesheet), "outline: 3px solid var(--focus)") {
		t.Error("no visible focus outline")
	}
}

// contrast is the WCAG 2 contrast ratio of two #rrggbb colours.
func contrast(t *testing.T, a, b string) float64 {
	t.Helper()
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	if err != nil || len(hex) != 7 {
		t.Fatalf("bad colour %q", hex)
	}
	ch := func(c uint64) float64 {
		s := float64(c) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(v>>16&0xff) + 0.7152*ch(v>>8&0xff) + 0.0722*ch(v&0xff)
}

func TestRenderFailureIsClean500(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.render(rec, http.StatusOK, "login", 42) // .Action on an int fails mid-page
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, "<html") {
		t.Fatalf("half-rendered page leaked: %q", body)
	}
}

func TestAtMostOneAutofocus(t *testing.T) {
	r := newRenderer(t)
	for _, p := range []LoginPage{{}, {Username: "alice"}, {Username: "alice", Error: "x"}} {
		rec := httptest.NewRecorder()
		r.Login(rec, 200, p)
		if n := strings.Count(rec.Body.String(), "autofocus"); n != 1 {
			t.Errorf("%+v: %d autofocus attributes, want 1", p, n)
		}
	}
}
