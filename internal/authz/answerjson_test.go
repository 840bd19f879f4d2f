package authz

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// checkDecisionJSON asserts that appendDecision writes what
// json.Encoder.Encode writes.
func checkDecisionJSON(t *testing.T, d decisionJSON) {
	t.Helper()
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(d); err != nil {
		t.Fatal(err)
	}
	if got := appendDecision(nil, &d); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("appendDecision:\n%s\njson.Encoder:\n%s", got, want.Bytes())
	}
}

func TestDecisionJSONMatchesEncoder(t *testing.T) {
	full := toJSON(Result{Allow: true, Reason: `permitted by "p" <&> é` + "\u2028\xff\x01", DecisionID: "dec_x",
		PolicyVersion: "v", Revision: 7, Policies: []string{"p", "q<"},
		Relations: []RelationCheck{{Check: "order:o-1#view@user:u", Allowed: true, Path: []string{"a", "b"}}, {Check: "c"}},
		Errors:    []string{"e"}})
	cases := map[string]decisionJSON{
		"full":       full,
		"empty":      toJSON(Result{}),
		"nil-slices": {Reason: "r"},
		"empty-path": {Relations: []RelationCheck{{Check: "c", Path: []string{}}}},
	}
	for name, d := range cases {
		t.Run("AZ-answer/"+name, func(t *testing.T) { checkDecisionJSON(t, d) })
	}
	rec := httptest.NewRecorder()
	writeDecision(rec, full)
	var want bytes.Buffer
	_ = json.NewEncoder(&want).Encode(full)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" || !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body.Bytes())
	}
}

// FuzzDecisionJSON is the differential check of the answer encoder.
func FuzzDecisionJSON(f *testing.F) {
	f.Add(true, "permitted <&>", "p", "order:o#r@user:u", "step\u2028\xff")
	f.Fuzz(func(t *testing.T, allow bool, reason, policy, check, path string) {
		checkDecisionJSON(t, toJSON(Result{Allow: allow, Reason: reason, DecisionID: check, PolicyVersion: policy,
			Policies: []string{policy, reason}, Relations: []RelationCheck{{Check: check, Allowed: allow, Path: []string{path}}},
			Errors: []string{path}}))
	})
}
