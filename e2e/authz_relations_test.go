package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/sdk/authz"
)

// TestAuthzRelationshipsAPI drives the relationship and entity API over
// HTTP with sdk/authz and a client-credentials token: revisions, read-your-
// writes with at_least_as_fresh, all-or-nothing validation, the changes
// feed, versioned entity pushes, and cursor paging.
func TestAuthzRelationshipsAPI(t *testing.T) {
	forEachAuthzBackend(t, azSetup{}, func(t *testing.T, az *azEnv) {
		ops := az.opsHTTP(t)
		base := az.authz.URL
		c := azSDK(t, base, ops)
		ctx := t.Context()
		start := azChangesNext(t, ops, base, "")
		t.Run("AZ-05/empty-store-check-answers-false", func(t *testing.T) {
			// Nothing written yet: the answer is "no", not an error.
			for _, q := range []struct {
				path string
				body map[string]any
			}{
				{"/relationships/check", map[string]any{"object": "order:o-0", "permission": "view", "subject": "user:usr_ann"}},
				{"/relationships/expand", map[string]any{"object": "order:o-0", "permission": "view"}},
				{"/relationships/objects", map[string]any{"object_type": "order", "permission": "view", "subject": "user:usr_ann"}},
				{"/relationships/subjects", map[string]any{"object": "order:o-0", "permission": "view", "subject_type": "user"}},
			} {
				r := azDo(t, ops, http.MethodPost, base+q.path, q.body)
				if r.status != http.StatusOK || r.body["allowed"] == true {
					t.Errorf("%s on an empty store: %d %.200s", q.path, r.status, r.raw)
				}
			}
			d := c.Authorize(ctx, authz.Request{Principal: authz.Principal{Type: "user", ID: "usr_ann"}, Action: "read",
				Resource: authz.Resource{Type: "order", ID: "o-0"}})
			if d.Err != nil || d.Allow || d.Reason == "" {
				t.Errorf("a decision on an empty store: %+v", d)
			}
		})

		rev1, err := c.WriteRelationships(ctx, []authz.RelationshipWrite{
			{Op: "touch", Tuple: "order:o-9#owner@user:usr_ann"},
			{Op: "touch", Tuple: "order:o-9#team@team:t9"},
		})
		if err != nil || rev1 == "" {
			t.Fatalf("write: %q %v", rev1, err)
		}
		rev2, err := c.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "touch", Tuple: "team:t9#manager@user:usr_mia"}})
		if err != nil || azRevNum(t, rev2) <= azRevNum(t, rev1) {
			t.Fatalf("second write: revision %q after %q, %v", rev2, rev1, err)
		}

		t.Run("AZ-05/check-at-least-as-fresh-sees-the-write", func(t *testing.T) {
			r := azCheck(t, ops, base, "order:o-9", "view", "user:usr_mia", rev2)
			want := []string{"order:o-9#team@team:t9", "team:t9#manager@user:usr_mia"}
			if r.body["allowed"] != true || !slices.Equal(azStrs(r.body["path"]), want) {
				t.Fatalf("check: %s", r.raw)
			}
			if azRevNum(t, str(r.body["revision"])) < azRevNum(t, rev2) {
				t.Errorf("evaluated at %v, older than the write's %s", r.body["revision"], rev2)
			}
			if r := azCheck(t, ops, base, "order:o-9", "delete", "user:usr_mia", rev2); r.body["allowed"] != false {
				t.Errorf("a manager may delete: %s", r.raw)
			}
		})

		t.Run("AZ-invalid/rejected-with-nothing-written", func(t *testing.T) {
			for _, bad := range []struct{ name, tuple string }{
				{"permission-not-relation", "order:o-10#view@user:usr_ann"},
				{"unknown-object-type", "invoice:i-1#owner@user:usr_ann"},
				{"unknown-relation", "order:o-10#approver@user:usr_ann"},
				{"subject-type-not-accepted", "order:o-10#owner@team:t9"},
				{"malformed", "order:o-10#owner"},
			} {
				t.Run(bad.name, func(t *testing.T) {
					_, err := c.WriteRelationships(ctx, []authz.RelationshipWrite{
						{Op: "touch", Tuple: "order:o-10#owner@user:usr_ann"}, {Op: "touch", Tuple: bad.tuple}})
					if err == nil {
						t.Fatalf("%s accepted", bad.tuple)
					}
					// Over raw HTTP: 400 naming the offending write.
					r := azDo(t, ops, http.MethodPost, base+"/relationships", map[string]any{"writes": []map[string]string{
						{"op": "touch", "tuple": "order:o-10#owner@user:usr_ann"}, {"op": "touch", "tuple": bad.tuple}}})
					if r.status != http.StatusBadRequest || !strings.Contains(str(r.body["error_description"]), "writes[1]") {
						t.Errorf("raw write: %d %.300s", r.status, r.raw)
					}
				})
			}
			r := azDo(t, ops, http.MethodGet, base+"/relationships?object_type=order&object_id=o-10&at_least_as_fresh="+rev2, nil)
			if r.status != http.StatusOK {
				t.Fatalf("read: %d %s", r.status, r.raw)
			}
			if tuples, _ := r.body["tuples"].([]any); len(tuples) != 0 {
				t.Fatalf("a rejected batch wrote %v", tuples)
			}
		})

		t.Run("entities/older-versions-ignored", func(t *testing.T) {
			applied, _, err := c.PutEntity(ctx, "order", "o-9", map[string]any{"status": "shipped"}, 2)
			if err != nil || !applied {
				t.Fatalf("put v2: %v %v", applied, err)
			}
			applied, _, err = c.PutEntity(ctx, "order", "o-9", map[string]any{"status": "open"}, 1)
			if err != nil || applied {
				t.Fatalf("put v1 after v2: applied %v %v", applied, err)
			}
			// The replicated status decides: ann owns o-9, but it shipped.
			d := c.Authorize(ctx, authz.Request{Principal: authz.Principal{Type: "user", ID: "usr_ann"}, Action: "delete",
				Resource: authz.Resource{Type: "order", ID: "o-9"}})
			if d.Err != nil || d.Allow || !slices.Equal(d.Policies, []string{"shipped-orders-stay"}) {
				t.Fatalf("delete of a shipped order: %+v", d)
			}
			d = c.Authorize(ctx, authz.Request{Principal: authz.Principal{Type: "user", ID: "usr_ann"}, Action: "pay",
				Resource: authz.Resource{Type: "order", ID: "o-9"}})
			if d.Err != nil || !d.Allow {
				t.Fatalf("owner pays: %+v", d)
			}
		})

		t.Run("changes/in-order", func(t *testing.T) {
			r := azDo(t, ops, http.MethodGet, base+"/changes?after="+start, nil)
			if r.status != http.StatusOK {
				t.Fatalf("changes: %d %s", r.status, r.raw)
			}
			var got []string
			last := int64(0)
			list, _ := r.body["changes"].([]any)
			for _, x := range list {
				ch, _ := x.(map[string]any)
				n := azRevNum(t, str(ch["revision"]))
				if n < last {
					t.Errorf("changes out of order: %v after %d", ch["revision"], last)
				}
				last = n
				if ent, ok := ch["entity"].(map[string]any); ok {
					got = append(got, fmt.Sprintf("%s %s:%s v%v", ch["kind"], ent["type"], ent["id"], ent["version"]))
					continue
				}
				got = append(got, str(ch["kind"])+" "+str(ch["tuple"]))
			}
			want := []string{"tuple_touch order:o-9#owner@user:usr_ann", "tuple_touch order:o-9#team@team:t9",
				"tuple_touch team:t9#manager@user:usr_mia", "entity_put order:o-9 v2"}
			if !slices.Equal(got, want) {
				t.Fatalf("changes\n got %q\nwant %q", got, want)
			}
			if azRevNum(t, str(r.body["next"])) != last {
				t.Errorf("next %v, want the last revision %d", r.body["next"], last)
			}
		})

		t.Run("list/objects-and-subjects-page-with-cursors", func(t *testing.T) {
			var writes []authz.RelationshipWrite
			for i := range 5 {
				writes = append(writes, authz.RelationshipWrite{Op: "touch", Tuple: fmt.Sprintf("order:p-%d#owner@user:usr_pager", i)})
				writes = append(writes, authz.RelationshipWrite{Op: "touch", Tuple: fmt.Sprintf("order:p-0#owner@user:usr_s%d", i)})
			}
			writes = append(writes, authz.RelationshipWrite{Op: "touch", Tuple: "order:p-0#team@team:tp"},
				authz.RelationshipWrite{Op: "touch", Tuple: "team:tp#manager@user:usr_boss"})
			rev, err := c.WriteRelationships(ctx, writes)
			if err != nil {
				t.Fatal(err)
			}
			objs := azPageAll(t, ops, base+"/relationships/objects", map[string]any{"object_type": "order", "permission": "view",
				"subject": "user:usr_pager", "consistency": map[string]any{"at_least_as_fresh": rev}}, "objects")
			if want := []string{"p-0", "p-1", "p-2", "p-3", "p-4"}; !slices.Equal(azTrimType(objs, "order:"), want) {
				t.Errorf("objects %v, want %v", objs, want)
			}
			subs := azPageAll(t, ops, base+"/relationships/subjects", map[string]any{"object": "order:p-0", "permission": "view",
				"subject_type": "user", "consistency": map[string]any{"at_least_as_fresh": rev}}, "subjects")
			want := []string{"usr_boss", "usr_pager", "usr_s0", "usr_s1", "usr_s2", "usr_s3", "usr_s4"}
			if !slices.Equal(azTrimType(subs, "user:"), want) {
				t.Errorf("subjects %v, want %v", subs, want)
			}
		})
	})
}

// azPageAll pages through a list endpoint two at a time and returns every
// item, failing on a repeated item or a cursor that does not advance.
func azPageAll(t *testing.T, hc *http.Client, u string, body map[string]any, key string) []string {
	t.Helper()
	var all []string
	body["limit"] = 2
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatalf("%s: more than 20 pages for a handful of items", u)
		}
		r := azDo(t, hc, http.MethodPost, u, body)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", u, r.status, r.raw)
		}
		items := azStrs(r.body[key])
		if len(items) > 2 {
			t.Fatalf("page of %d items with limit 2", len(items))
		}
		for _, it := range items {
			if slices.Contains(all, it) {
				t.Fatalf("%s: %s returned twice", u, it)
			}
		}
		all = append(all, items...)
		next := str(r.body["next_cursor"])
		if next == "" {
			if pages == 0 {
				t.Errorf("%s: everything in one page of limit 2", u)
			}
			break
		}
		if next == body["cursor"] {
			t.Fatalf("%s: cursor did not advance", u)
		}
		body["cursor"] = next
	}
	slices.Sort(all)
	return all
}

func azTrimType(items []string, prefix string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = strings.TrimPrefix(s, prefix)
	}
	return out
}

// azRevNum parses a revision token (decimal, docs/authz.md).
func azRevNum(t *testing.T, rev string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rev, 10, 64)
	if err != nil {
		t.Fatalf("revision %q is not a number: %v", rev, err)
	}
	return n
}

// azChangesNext returns the changes feed's head after after.
func azChangesNext(t *testing.T, hc *http.Client, base, after string) string {
	t.Helper()
	u := base + "/changes?limit=1000"
	if after != "" {
		u += "&after=" + after
	}
	r := azDo(t, hc, http.MethodGet, u, nil)
	if r.status != http.StatusOK {
		t.Fatalf("changes: %d %s", r.status, r.raw)
	}
	return str(r.body["next"])
}
