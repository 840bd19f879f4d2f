package decisionlog

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

func newLogger(t *testing.T, cfg Config) *Logger {
	t.Helper()
	l, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func entry(i int, allow bool) *Entry {
	return &Entry{
		ID:        fmt.Sprintf("dec_%03d", i),
		Time:      t0.Add(time.Duration(i) * time.Second),
		Principal: Principal{Type: "user", ID: "usr_alice", Issuer: "https://idp.example"},
		Action:    "read",
		Resource:  Resource{Type: "order", ID: fmt.Sprintf("o-%d", i)},
		Allow:     allow,
		Reason:    "r",
	}
}

func readAll(t *testing.T, s string) []Entry {
	t.Helper()
	es, err := Read(strings.NewReader(s), Filter{})
	if err != nil {
		t.Fatalf("Read: %v\n%s", err, s)
	}
	return es
}

func TestNewValidation(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Sample: 1}, true},
		{"sample zero", Config{Sample: 0}, true},
		{"sample negative", Config{Sample: -0.1}, false},
		{"sample above one", Config{Sample: 1.01}, false},
		{"sample NaN", Config{Sample: math.NaN()}, false},
		{"queue negative", Config{Sample: 1, Queue: -1}, false},
		{"queue huge", Config{Sample: 1, Queue: MaxQueue + 1}, false},
		{"ring huge", Config{Sample: 1, Ring: MaxRing + 1}, false},
		{"ring none", Config{Sample: 1, Ring: -1}, true},
		{"file", Config{Sample: 1, Path: filepath.Join(dir, "d.jsonl")}, true},
		{"unopenable file", Config{Sample: 1, Path: filepath.Join(dir, "missing", "d.jsonl")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := New(c.cfg, nil)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSampling(t *testing.T) {
	var mu sync.Mutex
	calls, next := 0, 0.0
	rnd := func() float64 { mu.Lock(); defer mu.Unlock(); calls++; return next }
	set := func(v float64) { mu.Lock(); next = v; mu.Unlock() }
	cases := []struct {
		name      string
		sample    float64
		rand      float64
		e         *Entry
		logged    bool
		randCalls int
	}{
		{"allow under sample", 0.5, 0.49, entry(1, true), true, 1},
		{"allow over sample", 0.5, 0.5, entry(2, true), false, 1},
		{"deny always", 0.5, 0.99, entry(3, false), true, 0},
		{"deny with sample zero", 0, 0.99, entry(4, false), true, 0},
		{"allow with sample zero", 0, 0, entry(5, true), false, 0},
		{"allow with sample one", 1, 0.999, entry(6, true), true, 0},
		{"shadow disagreement flag", 0.1, 0.99, func() *Entry { e := entry(7, true); e.Shadow = &Shadow{Allow: false, Disagree: true}; return e }(), true, 0},
		{"shadow differs without flag", 0.1, 0.99, func() *Entry { e := entry(8, true); e.Shadow = &Shadow{Allow: false}; return e }(), true, 0},
		{"shadow agrees", 0.1, 0.99, func() *Entry { e := entry(9, true); e.Shadow = &Shadow{Allow: true}; return e }(), false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out syncbuf.Buffer
			l := newLogger(t, Config{Writer: &out, Sample: c.sample, Rand: rnd})
			set(c.rand)
			mu.Lock()
			calls = 0
			mu.Unlock()
			l.Log(c.e)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got := len(readAll(t, out.String()))
			if (got == 1) != c.logged || got > 1 {
				t.Fatalf("logged %d lines, want logged=%v", got, c.logged)
			}
			if n := len(l.Recent(Filter{})); (n == 1) != c.logged {
				t.Fatalf("ring holds %d, want logged=%v", n, c.logged)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != c.randCalls {
				t.Fatalf("Rand called %d times, want %d", calls, c.randCalls)
			}
		})
	}
}

func TestRingOrderAndSize(t *testing.T) {
	l := newLogger(t, Config{Ring: 3, Sample: 1})
	for i := 1; i <= 5; i++ {
		l.Log(entry(i, i%2 == 0))
	}
	got := l.Recent(Filter{})
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if want := "dec_005,dec_004,dec_003"; strings.Join(ids, ",") != want {
		t.Fatalf("Recent = %v, want %s", ids, want)
	}
	if none := newLogger(t, Config{Ring: -1, Sample: 1}); func() bool { none.Log(entry(1, false)); return none.Recent(Filter{}) != nil }() {
		t.Fatal("ring -1 kept entries")
	}
	def := newLogger(t, Config{Sample: 1})
	for i := range DefaultRing + 10 {
		def.Log(entry(i, false))
	}
	if n := len(def.Recent(Filter{})); n != DefaultRing {
		t.Fatalf("default ring holds %d, want %d", n, DefaultRing)
	}
}

func TestRecentFilters(t *testing.T) {
	l := newLogger(t, Config{Sample: 1})
	for i := 1; i <= 6; i++ {
		e := entry(i, i%2 == 0)
		if i > 4 {
			e.Principal = Principal{Type: "client", ID: "svc_orders"}
			e.Action = "write"
		}
		if i == 3 {
			e.Shadow = &Shadow{Allow: true, Disagree: true}
		}
		if i == 4 {
			e.Shadow = &Shadow{Allow: true} // agrees with the allow
		}
		l.Log(e)
	}
	yes, no := true, false
	cases := []struct {
		name string
		f    Filter
		want string
	}{
		{"all", Filter{}, "6,5,4,3,2,1"},
		{"principal type:id", Filter{Principal: "user:usr_alice"}, "4,3,2,1"},
		{"principal id", Filter{Principal: "svc_orders"}, "6,5"},
		{"principal wrong type", Filter{Principal: "client:usr_alice"}, ""},
		{"allow", Filter{Allow: &yes}, "6,4,2"},
		{"deny", Filter{Allow: &no}, "5,3,1"},
		{"since inclusive", Filter{Since: t0.Add(3 * time.Second)}, "6,5,4,3"},
		{"action", Filter{Action: "write"}, "6,5"},
		{"limit", Filter{Limit: 2}, "6,5"},
		{"disagreements", Filter{Disagreements: true}, "3"},
		{"combined", Filter{Principal: "user:usr_alice", Allow: &no, Limit: 1}, "3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ids []string
			for _, e := range l.Recent(c.f) {
				ids = append(ids, strings.TrimLeft(strings.TrimPrefix(e.ID, "dec_"), "0"))
			}
			if got := strings.Join(ids, ","); got != c.want {
				t.Fatalf("Recent = %q, want %q", got, c.want)
			}
		})
	}
}

func TestLogCopiesAndRedacts(t *testing.T) {
	l := newLogger(t, Config{Sample: 1})
	e := entry(1, false)
	nested := map[string]any{"level": "x"}
	list := []any{"a", map[string]any{"token": "t0k"}}
	e.Context = map[string]any{"ip": "10.0.0.1", "nested": nested, "list": list, "Authorization": "Bearer abc"}
	e.Principal.Attrs = map[string]any{"roles": []string{"admin"}, "client_secret": "s3cr3t"}
	e.Resource.Attrs = map[string]any{"status": "open"}
	e.Policies = []string{"p1"}
	e.Relations = []RelationCheck{{Check: "c", Allowed: true, Path: []string{"t1"}}}
	e.Shadow = &Shadow{Allow: false, Policies: []string{"s1"}}
	l.Log(e)

	// The caller's entry is untouched by redaction.
	if e.Context["Authorization"] != "Bearer abc" || list[1].(map[string]any)["token"] != "t0k" {
		t.Fatal("Log modified the caller's maps")
	}
	// Later mutation by the caller does not reach the ring.
	nested["level"] = "changed"
	list[0] = "changed"
	e.Principal.Attrs["roles"].([]string)[0] = "changed"
	e.Resource.Attrs["status"] = "changed"
	e.Policies[0], e.Relations[0].Path[0], e.Shadow.Policies[0] = "changed", "changed", "changed"
	e.Reason = "changed"

	got := l.Recent(Filter{})[0]
	if got.Context["nested"].(map[string]any)["level"] != "x" || got.Context["list"].([]any)[0] != "a" ||
		got.Principal.Attrs["roles"].([]any)[0] != "admin" || got.Resource.Attrs["status"] != "open" ||
		got.Policies[0] != "p1" || got.Relations[0].Path[0] != "t1" || got.Shadow.Policies[0] != "s1" || got.Reason != "r" {
		t.Fatalf("logged entry changed with the caller's data: %+v", got)
	}
	if got.Context["Authorization"] != Redacted || got.Principal.Attrs["client_secret"] != Redacted ||
		got.Context["list"].([]any)[1].(map[string]any)["token"] != Redacted {
		t.Fatalf("not redacted: %+v", got)
	}
	// Mutating what Recent returned does not change the ring.
	got.Context["nested"].(map[string]any)["level"] = "mutated"
	if l.Recent(Filter{})[0].Context["nested"].(map[string]any)["level"] != "x" {
		t.Fatal("Recent returned the ring's own maps")
	}
}

func TestIDAndTimeFilled(t *testing.T) {
	l := newLogger(t, Config{Sample: 1})
	before := time.Now()
	l.Log(&Entry{Action: "read", Time: time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("x", 3600))})
	l.Log(&Entry{Action: "read"})
	got := l.Recent(Filter{})
	if len(got) != 2 || !strings.HasPrefix(got[0].ID, "dec_") || got[0].ID == got[1].ID {
		t.Fatalf("ids not filled: %+v", got)
	}
	if got[0].Time.Before(before) || got[0].Time.Location() != time.UTC {
		t.Fatalf("time not filled in UTC: %v", got[0].Time)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); !got[1].Time.Equal(want) || got[1].Time.Location() != time.UTC {
		t.Fatalf("time = %v, want %v in UTC", got[1].Time, want)
	}
}

// blockingWriter blocks every Write until released, signalling entry.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	buf     syncbuf.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.buf.Write(p)
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	bw := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := New(Config{Writer: bw, Sample: 1, Queue: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(entry(0, false))
	// The periodic flush hands the first entry to the writer, which blocks.
	select {
	case <-bw.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("writer never called")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 12; i++ { // 2 fit in the queue, 10 are dropped
			l.Log(entry(i, false))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Log blocked on a full queue")
	}
	if d := l.Dropped(); d != 10 {
		t.Fatalf("Dropped = %d, want 10", d)
	}
	close(bw.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, bw.buf.String())); n != 3 {
		t.Fatalf("wrote %d entries, want 3", n)
	}
	if n := len(l.Recent(Filter{})); n != 13 {
		t.Fatalf("ring holds %d, want all 13", n)
	}
}

func TestCloseFlushes(t *testing.T) {
	var out syncbuf.Buffer
	l, err := New(Config{Writer: &out, Sample: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		l.Log(entry(i, false))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	es := readAll(t, out.String())
	if len(es) != 50 || es[0].ID != "dec_049" || es[49].ID != "dec_000" {
		t.Fatalf("after Close read %d entries", len(es))
	}
	l.Log(entry(99, false))
	if l.Dropped() != 1 {
		t.Fatalf("Log after Close: Dropped = %d, want 1", l.Dropped())
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if strings.Count(out.String(), "\n") != 50 {
		t.Fatal("wrote after Close")
	}
}

func TestPeriodicFlush(t *testing.T) {
	var out syncbuf.Buffer
	l := newLogger(t, Config{Writer: &out, Sample: 1})
	l.Log(entry(1, false))
	deadline := time.Now().Add(10 * time.Second)
	for out.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("entry not flushed without Close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if es := readAll(t, out.String()); len(es) != 1 || es[0].ID != "dec_001" {
		t.Fatalf("flushed %+v", es)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorLoggedOnceAndCounted(t *testing.T) {
	var logs syncbuf.Buffer
	l, err := New(Config{Writer: failingWriter{}, Sample: 1}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := entry(i, false)
		e.Context = map[string]any{"password": "hunter2"}
		l.Log(e)
	}
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close = %v, want the flush error", err)
	}
	if n := strings.Count(logs.String(), "decision log write failed"); n != 1 {
		t.Fatalf("write error logged %d times:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatal("secret-in-log/write-error: a context value reached the process log")
	}
	if l.Dropped() != 3 || l.WriteErrors() == 0 {
		t.Fatalf("Dropped = %d, WriteErrors = %d", l.Dropped(), l.WriteErrors())
	}
}

func TestFileOutput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(p, []byte(`{"decision_id":"dec_old","time":"2026-01-01T00:00:00Z","principal":{"type":"user","id":"u"},"action":"a","resource":{"type":"t","id":"i"},"allow":false,"latency_us":1}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := newLogger(t, Config{Path: p, Sample: 1})
	l.Log(entry(1, false))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if es := readAll(t, string(b)); len(es) != 2 || es[1].ID != "dec_old" {
		t.Fatalf("file not appended: %s", b)
	}
	p2 := filepath.Join(t.TempDir(), "new.jsonl")
	l2 := newLogger(t, Config{Path: p2, Sample: 1})
	_ = l2.Close()
	if fi, err := os.Stat(p2); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new log file: %v %v", fi, err)
	}
}

func TestOversizedEntry(t *testing.T) {
	var out syncbuf.Buffer
	l := newLogger(t, Config{Writer: &out, Sample: 1})
	e := entry(1, false)
	e.Context = map[string]any{"blob": strings.Repeat("x", MaxLine)}
	l.Log(e)
	e2 := entry(2, false)
	e2.Reason = strings.Repeat("y", MaxLine)
	l.Log(e2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	es := readAll(t, out.String())
	if len(es) != 1 || es[0].Context != nil || !strings.Contains(strings.Join(es[0].Errors, ";"), "too large") {
		t.Fatalf("oversized entry written as %d entries: %+v", len(es), es)
	}
	if l.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1 (the unshrinkable entry)", l.Dropped())
	}
}

func TestNilSafety(t *testing.T) {
	var l *Logger
	l.Log(entry(1, false))
	if l.Recent(Filter{}) != nil || l.Dropped() != 0 || l.WriteErrors() != 0 || l.Close() != nil {
		t.Fatal("nil Logger not inert")
	}
	real := newLogger(t, Config{Sample: 1})
	real.Log(nil)
	if len(real.Recent(Filter{})) != 0 {
		t.Fatal("nil entry logged")
	}
	if (Filter{}).Match(nil) {
		t.Fatal("Match(nil) = true")
	}
}

func TestConcurrentLogAndRecent(t *testing.T) {
	var out syncbuf.Buffer
	l, err := New(Config{Writer: &out, Sample: 0.5, Ring: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				e := entry(w*per+i, false)
				e.Context = map[string]any{"w": w, "i": i}
				l.Log(e)
			}
		}()
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
				_ = l.Recent(Filter{Principal: "user:usr_alice", Limit: 10})
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	written := len(readAll(t, out.String()))
	if uint64(written)+l.Dropped() != workers*per {
		t.Fatalf("written %d + dropped %d != %d", written, l.Dropped(), workers*per)
	}
	if n := len(l.Recent(Filter{})); n != 100 {
		t.Fatalf("ring holds %d", n)
	}
}
