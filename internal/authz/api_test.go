package authz

import (
	"net/http"
	"strings"
	"testing"
)

func TestRelationshipsAPI(t *testing.T) {
	e := newEnv(t)
	write, read, check := callerToken(t, ScopeWrite), callerToken(t, ScopeRead), callerToken(t, ScopeCheck)

	t.Run("writes-validated-all-or-nothing", func(t *testing.T) {
		st, out, _ := e.do(t, http.MethodPost, "/relationships", write, map[string]any{"writes": []any{
			map[string]any{"op": "touch", "tuple": "order:o-1#viewer@user:x"},    // unknown relation
			map[string]any{"op": "touch", "tuple": "order:o-1#owner@user:usr_z"}, // fine
			map[string]any{"op": "touch", "tuple": "order:o-1#view@user:x"},      // a permission
			map[string]any{"op": "upsert", "tuple": "order:o-1#owner@user:x"},    // bad op
			map[string]any{"op": "touch", "tuple": "order:o-1#owner@team:eng"},   // wrong subject type
		}})
		desc, _ := out["error_description"].(string)
		if st != 400 {
			t.Fatalf("%d %v", st, out)
		}
		for _, want := range []string{"writes[0]", "writes[2]", "writes[3]", "writes[4]"} {
			if !strings.Contains(desc, want) {
				t.Errorf("description lacks %s: %s", want, desc)
			}
		}
		if strings.Contains(desc, "writes[1]") {
			t.Errorf("valid write reported: %s", desc)
		}
		_, out, _ = e.do(t, http.MethodGet, "/relationships?object_type=order&object_id=o-1", read, nil)
		if n := len(out["tuples"].([]any)); n != 0 {
			t.Fatalf("something was written: %v", out)
		}
	})
	t.Run("read-paging", func(t *testing.T) {
		var got []string
		cursor := ""
		for range 10 {
			path := "/relationships?object_type=team&limit=1"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			st, out, _ := e.do(t, http.MethodGet, path, read, nil)
			if st != 200 {
				t.Fatalf("%d %v", st, out)
			}
			for _, tp := range out["tuples"].([]any) {
				got = append(got, tp.(string))
			}
			cursor, _ = out["next_cursor"].(string)
			if cursor == "" {
				break
			}
		}
		if len(got) != 3 || got[0] != "team:eng#manager@user:usr_alice" {
			t.Fatalf("tuples %v", got)
		}
		for _, bad := range []string{"/relationships", "/relationships?object_type=team&limit=0", "/relationships?object_type=team&x=1",
			"/relationships?object_type=team&object_type=order", "/relationships?object_type=team&at_least_as_fresh=99999"} {
			if st, out, _ := e.do(t, http.MethodGet, bad, read, nil); st != 400 {
				t.Errorf("%s: %d %v", bad, st, out)
			}
		}
	})
	t.Run("check-expand-list", func(t *testing.T) {
		st, out, _ := e.do(t, http.MethodPost, "/relationships/check", check,
			map[string]any{"object": "order:o-2001", "permission": "view", "subject": "user:usr_alice"})
		if st != 200 || out["allowed"] != true || len(out["path"].([]any)) != 2 {
			t.Fatalf("check %d %v", st, out)
		}
		st, out, _ = e.do(t, http.MethodPost, "/relationships/expand", check,
			map[string]any{"object": "order:o-2001", "permission": "view"})
		if tree, _ := out["tree"].(map[string]any); st != 200 || tree["op"] != "union" {
			t.Fatalf("expand %d %v", st, out)
		}
		st, out, _ = e.do(t, http.MethodPost, "/relationships/objects", check,
			map[string]any{"object_type": "order", "permission": "view", "subject": "user:usr_alice"})
		if st != 200 || len(out["objects"].([]any)) != 3 {
			t.Fatalf("objects %d %v", st, out)
		}
		st, out, _ = e.do(t, http.MethodPost, "/relationships/subjects", check,
			map[string]any{"object": "order:o-2001", "permission": "view", "subject_type": "user"})
		if st != 200 || len(out["subjects"].([]any)) != 2 {
			t.Fatalf("subjects %d %v", st, out)
		}
		st, out, _ = e.do(t, http.MethodPost, "/relationships/check", check,
			map[string]any{"object": "order:o-2001", "permission": "nope", "subject": "user:usr_alice"})
		if st != 400 {
			t.Fatalf("unknown permission: %d %v", st, out)
		}
	})
	t.Run("entities-versioned", func(t *testing.T) {
		put := func(v int, status string) map[string]any {
			st, out, _ := e.do(t, http.MethodPut, "/entities/order/o-5", write,
				map[string]any{"attrs": map[string]any{"status": status}, "version": v})
			if st != 200 {
				t.Fatalf("%d %v", st, out)
			}
			return out
		}
		if out := put(2, "open"); out["applied"] != true {
			t.Fatal(out)
		}
		if out := put(1, "shipped"); out["applied"] != false {
			t.Fatalf("older version applied: %v", out)
		}
		st, out, _ := e.do(t, http.MethodDelete, "/entities/order/o-5?version=3", write, nil)
		if st != 200 || out["applied"] != true {
			t.Fatalf("%d %v", st, out)
		}
		for _, bad := range []string{"/entities/order/o-5", "/entities/order/o-5?version=x", "/entities/order/o-5?version=0"} {
			if st, _, _ := e.do(t, http.MethodDelete, bad, write, nil); st != 400 {
				t.Errorf("%s: %d", bad, st)
			}
		}
		if st, _, _ := e.do(t, http.MethodPut, "/entities/order/o-5", write, map[string]any{"attrs": []any{}, "version": 9}); st != 400 {
			t.Errorf("array attrs: %d", st)
		}
	})
	t.Run("changes-feed", func(t *testing.T) {
		st, out, _ := e.do(t, http.MethodGet, "/changes?limit=2", read, nil)
		// Pages end at a revision boundary: the seed is one revision.
		if st != 200 || len(out["changes"].([]any)) != len(seed) || out["next"] != "1" {
			t.Fatalf("%d %v", st, out)
		}
		next := out["next"].(string)
		st, out, _ = e.do(t, http.MethodGet, "/changes?after="+next, read, nil)
		if st != 200 || len(out["changes"].([]any)) == 0 {
			t.Fatalf("%d %v", st, out)
		}
		last := out["changes"].([]any)[len(out["changes"].([]any))-1].(map[string]any)
		if last["kind"] != "entity_delete" {
			t.Fatalf("last change %v", last)
		}
	})
	t.Run("decisions-ring", func(t *testing.T) {
		e.authorize(t, map[string]any{"principal": principal("usr_bob", "acme"), "action": "read", "resource": order("o-1001", "acme", "open")})
		st, out, _ := e.do(t, http.MethodGet, "/decisions?principal=usr_bob&allow=false&since=1h", callerToken(t, ScopeAudit), nil)
		ds, _ := out["decisions"].([]any)
		if st != 200 || len(ds) != 1 {
			t.Fatalf("%d %v", st, out)
		}
		if st, _, _ := e.do(t, http.MethodGet, "/decisions?allow=maybe", callerToken(t, ScopeAudit), nil); st != 400 {
			t.Fatal(st)
		}
	})
}
