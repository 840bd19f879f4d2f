package authz

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAZ05Consistency(t *testing.T) {
	bob := principal("usr_bob", "acme")
	readO1001 := func(extra map[string]any) map[string]any {
		b := map[string]any{"principal": bob, "action": "read", "resource": order("o-1001", "acme", "open")}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	t.Run("AZ-05/local-write-visible-at-once", func(t *testing.T) {
		e := newEnv(t)
		if _, out := e.authorize(t, readO1001(nil)); out["allow"] != false {
			t.Fatalf("before: %v", out)
		}
		st, out, _ := e.do(t, http.MethodPost, "/relationships", callerToken(t, ScopeWrite),
			map[string]any{"writes": []any{map[string]any{"op": "touch", "tuple": "order:o-1001#owner@user:usr_bob"}}})
		if st != 200 || out["revision"] == "" {
			t.Fatalf("write: %d %v", st, out)
		}
		if _, out := e.authorize(t, readO1001(nil)); out["allow"] != true {
			t.Fatalf("after a local write, without a token: %v", out)
		}
	})
	t.Run("AZ-05/remote-write-with-token", func(t *testing.T) {
		e := newEnv(t)
		if _, out := e.authorize(t, readO1001(nil)); out["allow"] != false {
			t.Fatalf("before: %v", out)
		}
		rev := e.write(t, "order:o-1001#owner@user:usr_bob") // another replica's write
		// The known head is bounded by the poller (not running here): a
		// decision without a token still sees the old state...
		if _, out := e.authorize(t, readO1001(nil)); out["allow"] != false {
			t.Fatalf("stale head expected without poller: %v", out)
		}
		// ...and one with the write's token sees the change.
		_, out := e.authorize(t, readO1001(map[string]any{"consistency": map[string]any{"at_least_as_fresh": revString(rev)}}))
		if out["allow"] != true || out["revision"] != revString(rev) {
			t.Fatalf("with token: %v", out)
		}
	})
	t.Run("AZ-05/poller-bounds-staleness", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Freshness = 10 * time.Millisecond })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.svc.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		e.authorize(t, readO1001(nil))
		e.write(t, "order:o-1001#owner@user:usr_bob")
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, out := e.authorize(t, readO1001(nil)); out["allow"] == true {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("remote write never became visible")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("AZ-05/token-from-the-future", func(t *testing.T) {
		e := newEnv(t)
		st, out := e.authorize(t, readO1001(map[string]any{"consistency": map[string]any{"at_least_as_fresh": "999999"}}))
		if st != 400 || out["allow"] != false || !strings.Contains(out["error_description"].(string), "from the future") {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("AZ-05/malformed-token", func(t *testing.T) {
		e := newEnv(t)
		for _, tok := range []any{"01", "-1", " 1", "1e3", 5, "18446744073709551616"} {
			st, out := e.authorize(t, readO1001(map[string]any{"consistency": map[string]any{"at_least_as_fresh": tok}}))
			if st != 400 || out["allow"] != false {
				t.Fatalf("%v: %d %v", tok, st, out)
			}
		}
	})
	t.Run("AZ-05/in-process-future", func(t *testing.T) {
		e := newEnv(t)
		res := e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
			Resource: orderEntity("o-1001", "open"), AtLeast: 1 << 40})
		if res.Allow || res.Reason != "revision token is from the future" {
			t.Fatalf("%+v", res)
		}
	})
}
