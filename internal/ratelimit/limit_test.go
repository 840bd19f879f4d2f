package ratelimit

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestLimitValidate(t *testing.T) {
	valid := []Limit{
		{Rate: 1, Period: time.Millisecond},
		{Rate: 1, Period: 24 * time.Hour, Burst: 1},
		{Rate: 100, Period: time.Second, Burst: 0},
		{Rate: 200, Period: time.Second, Burst: 20},
		{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000},
		{Rate: 1, Period: 24 * time.Hour, Burst: 36_500},
	}
	for _, l := range valid {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	invalid := map[string]Limit{
		"zero":            {},
		"rate-0":          {Rate: 0, Period: time.Second},
		"rate-negative":   {Rate: -1, Period: time.Second},
		"period-0":        {Rate: 1},
		"period-negative": {Rate: 1, Period: -time.Second},
		"period-sub-ms":   {Rate: 1, Period: time.Millisecond - 1},
		"period-over-24h": {Rate: 1, Period: 24*time.Hour + 1},
		"burst-negative":  {Rate: 1, Period: time.Second, Burst: -1},
		"burst-over-1e6":  {Rate: 1, Period: time.Second, Burst: 1_000_001},
		"interval-sub-us": {Rate: 1_000_001, Period: time.Second, Burst: 1},
		"rate-huge":       {Rate: 1 << 62, Period: time.Second},
		"fill-too-long":   {Rate: 1, Period: 24 * time.Hour, Burst: 1_000_000},
	}
	for name, l := range invalid {
		t.Run("AK-04/"+name, func(t *testing.T) {
			if err := l.Validate(); !errors.Is(err, ErrInvalidLimit) {
				t.Errorf("%+v: err = %v, want ErrInvalidLimit", l, err)
			}
		})
	}
}

func TestWriteHeaders(t *testing.T) {
	lim := Limit{Rate: 200, Period: time.Second, Burst: 20}
	tests := []struct {
		name string
		r    Result
		l    Limit
		want http.Header
	}{
		{"allowed", Result{Allowed: true, Limit: 20, Remaining: 19, ResetAfter: 5 * time.Millisecond}, lim, http.Header{
			"Ratelimit-Limit": {"20"}, "Ratelimit-Remaining": {"19"}, "Ratelimit-Reset": {"1"},
			"Ratelimit-Policy": {"20;w=1"},
		}},
		{"full", Result{Allowed: true, Limit: 20, Remaining: 20}, lim, http.Header{
			"Ratelimit-Limit": {"20"}, "Ratelimit-Remaining": {"20"}, "Ratelimit-Reset": {"0"},
			"Ratelimit-Policy": {"20;w=1"},
		}},
		{"refused", Result{Limit: 20, RetryAfter: 1500 * time.Millisecond, ResetAfter: 100 * time.Second}, lim, http.Header{
			"Ratelimit-Limit": {"20"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"100"},
			"Ratelimit-Policy": {"20;w=1"}, "Retry-After": {"2"},
		}},
		{"refused-exact-second", Result{Limit: 5, RetryAfter: 3 * time.Second, ResetAfter: 3 * time.Second},
			Limit{Rate: 5, Period: time.Minute}, http.Header{
				"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"3"},
				"Ratelimit-Policy": {"5;w=60"}, "Retry-After": {"3"},
			}},
		{"refused-retry-min-1", Result{Limit: 5, RetryAfter: time.Nanosecond, ResetAfter: time.Nanosecond},
			Limit{Rate: 5, Period: 100 * time.Millisecond}, http.Header{
				"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"1"},
				"Ratelimit-Policy": {"5;w=1"}, "Retry-After": {"1"},
			}},
		{"refused-zero-retry", Result{Limit: 1}, Limit{Rate: 1, Period: 1500 * time.Millisecond}, http.Header{
			"Ratelimit-Limit": {"1"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"0"},
			"Ratelimit-Policy": {"1;w=2"}, "Retry-After": {"1"},
		}},
		{"negative-remaining-clamped", Result{Allowed: true, Limit: 1, Remaining: -3}, Limit{Rate: 1, Period: time.Hour}, http.Header{
			"Ratelimit-Limit": {"1"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"0"},
			"Ratelimit-Policy": {"1;w=3600"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			WriteHeaders(h, tt.r, tt.l)
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("got  %v\nwant %v", h, tt.want)
			}
		})
	}
	t.Run("overwrites", func(t *testing.T) {
		h := http.Header{"Retry-After": {"999"}, "Ratelimit-Limit": {"1", "2"}}
		WriteHeaders(h, Result{Limit: 20, RetryAfter: time.Second}, lim)
		if got := h.Values("RateLimit-Limit"); len(got) != 1 || got[0] != "20" {
			t.Errorf("RateLimit-Limit = %q", got)
		}
		if got := h.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q", got)
		}
	})
}

func TestParseFailMode(t *testing.T) {
	for s, want := range map[string]FailMode{"open": FailOpen, "closed": FailClosed} {
		m, err := ParseFailMode(s)
		if err != nil || m != want || m.String() != s {
			t.Errorf("ParseFailMode(%q) = %v, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Open", "CLOSED", " open", "open ", "opened", "fail-open", "0", "1", "true", "open\x00"} {
		t.Run("RL-04/"+s, func(t *testing.T) {
			if m, err := ParseFailMode(s); err == nil {
				t.Errorf("ParseFailMode(%q) = %v, want error", s, m)
			} else if m != FailClosed {
				t.Errorf("ParseFailMode(%q) error returned %v, want FailClosed", s, m)
			}
		})
	}
}

func FuzzParseFailMode(f *testing.F) {
	for _, s := range []string{"open", "closed", "", "Open", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseFailMode(s)
		if err != nil {
			if m != FailClosed {
				t.Fatalf("error with mode %v", m)
			}
			return
		}
		if m.String() != s {
			t.Fatalf("ParseFailMode(%q) = %v", s, m)
		}
	})
}
