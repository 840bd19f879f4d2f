package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"ipv6 loopback", []string{"-host", "::1"}, true},
		{"other loopback", []string{"-host", "127.8.9.10", "-token-ttl", "2h"}, true},
		// Refused: anything that may listen beyond this machine.
		{"name", []string{"-host", "localhost"}, false},
		{"unspecified v4", []string{"-host", "0.0.0.0"}, false},
		{"unspecified v6", []string{"-host", "::"}, false},
		{"private", []string{"-host", "10.0.0.1"}, false},
		{"with port", []string{"-host", "127.0.0.1:80"}, false},
		{"empty host", []string{"-host", ""}, false},
		{"ttl too short", []string{"-token-ttl", "1s"}, false},
		{"ttl too long", []string{"-token-ttl", "48h"}, false},
		{"empty access log", []string{"-access-log", ""}, false},
		{"stray argument", []string{"x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestRunRefusesRemoteHost(t *testing.T) {
	err := run(t.Context(), []string{"-host", "192.0.2.1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not a loopback IP") {
		t.Fatalf("err = %v", err)
	}
}

// TestStart brings the whole bench up and checks what each target answers.
func TestStart(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b, err := start(ctx, options{host: "127.0.0.1", tokenTTL: time.Hour, accessLog: logPath}, logf, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	a := b.addrs
	for _, u := range []string{a.Upstream, a.GatewayAuth, a.GatewayNoAuth, a.ProxyBare} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("address %q is not loopback", u)
		}
	}
	get := func(t *testing.T, url, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	tests := []struct {
		name, url, token string
		want             int
	}{
		{"upstream direct", a.Upstream + a.Path, "", http.StatusOK},
		{"noauth gateway", a.GatewayNoAuth + a.Path, "", http.StatusOK},
		{"bare proxy baseline", a.ProxyBare + a.Path, "", http.StatusOK},
		{"jwt gateway with the token", a.GatewayAuth + a.Path, a.Token, http.StatusOK},
		{"jwt gateway without a token", a.GatewayAuth + a.Path, "", http.StatusUnauthorized},
		{"JWT-A06/altered signature", a.GatewayAuth + a.Path, a.Token[:len(a.Token)-4] + "AAAA", http.StatusUnauthorized},
		{"mem is not routed by the gateway", a.GatewayNoAuth + "/mem", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, tt.url, tt.token)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if status == http.StatusOK && body != string(upstreamBody) {
				t.Fatalf("body %q", body)
			}
		})
	}
	t.Run("mem", func(t *testing.T) {
		status, body := get(t, a.Upstream+"/mem", "")
		var m Mem
		if err := json.Unmarshal([]byte(body), &m); status != http.StatusOK || err != nil {
			t.Fatalf("status %d, %v: %s", status, err, body)
		}
		if m.HeapInuseBytes == 0 || m.SysBytes < m.HeapInuseBytes || m.Goroutines == 0 {
			t.Fatalf("mem %+v", m)
		}
		if runtime.GOOS == "linux" && (m.RSSBytes <= 0 || m.HWMBytes < m.RSSBytes) {
			t.Fatalf("mem %+v: want RSS and its high-water mark from /proc", m)
		}
	})
	t.Run("access log on, token never logged", func(t *testing.T) {
		logs, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(logs), `"msg":"access"`); n < 5 {
			t.Fatalf("%d access lines, want one per gateway request:\n%s", n, logs)
		}
		if strings.Contains(string(logs), a.Token[strings.LastIndexByte(a.Token, '.')+1:]) {
			t.Fatal("the access log holds the token")
		}
	})
}

func TestParseStatus(t *testing.T) {
	const real = "Name:\tgwserver\nVmPeak:\t 1300 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t8\n"
	tests := []struct {
		name     string
		in       string
		rss, hwm int64
		ok       bool
	}{
		{"real", real, 10240 * 1024, 20480 * 1024, true},
		{"no trailing newline", "VmRSS: 1 kB\nVmHWM: 2 kB", 1024, 2048, true},
		{"missing hwm", "VmRSS:\t1 kB\n", -1, -1, false},
		{"empty", "", -1, -1, false},
		{"duplicate", "VmRSS: 1 kB\nVmRSS: 2 kB\nVmHWM: 2 kB\n", -1, -1, false},
		{"wrong unit", "VmRSS: 1 MB\nVmHWM: 2 kB\n", -1, -1, false},
		{"negative", "VmRSS: -1 kB\nVmHWM: 2 kB\n", -1, -1, false},
		{"plus sign", "VmRSS: +1 kB\nVmHWM: 2 kB\n", -1, -1, false},
		{"no number", "VmRSS: kB\nVmHWM: 2 kB\n", -1, -1, false},
		{"overflow", "VmRSS: 99999999999999999999 kB\nVmHWM: 2 kB\n", -1, -1, false},
		{"garbage after", "VmRSS: 1 kB x\nVmHWM: 2 kB\n", -1, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, hwm, err := parseStatus([]byte(tt.in))
			if (err == nil) != tt.ok || rss != tt.rss || hwm != tt.hwm {
				t.Fatalf("parseStatus = %d, %d, %v; want %d, %d ok=%v", rss, hwm, err, tt.rss, tt.hwm, tt.ok)
			}
		})
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("VmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"))
	f.Add([]byte("VmRSS: 999999999999999 kB\nVmHWM: 0 kB"))
	f.Add([]byte("VmRSS:\nVmHWM:::"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rss, hwm, err := parseStatus(b)
		if err != nil {
			if rss != -1 || hwm != -1 {
				t.Fatalf("error %v with values %d, %d", err, rss, hwm)
			}
			return
		}
		if rss < 0 || hwm < 0 || rss%1024 != 0 || hwm%1024 != 0 {
			t.Fatalf("values %d, %d", rss, hwm)
		}
	})
}
