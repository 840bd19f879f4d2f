package main

import (
	"encoding/json"
	"io"
	"net/http"
)

// baselineRequest mirrors the members of a POST /authorize body.
type baselineRequest struct {
	Principal   map[string]any `json:"principal"`
	Action      string         `json:"action"`
	Resource    map[string]any `json:"resource"`
	Context     map[string]any `json:"context"`
	Consistency map[string]any `json:"consistency"`
}

// baselineDecision has the members and about the size of a real decision.
type baselineDecision struct {
	Allow         bool     `json:"allow"`
	Reason        string   `json:"reason"`
	DecisionID    string   `json:"decision_id"`
	PolicyVersion string   `json:"policy_version"`
	Revision      string   `json:"revision"`
	Policies      []string `json:"policies"`
}

// baseline is the cost floor of the HTTP benchmark: net/http and
// encoding/json on this machine. It reads the body (64 KiB at most, like the
// service), decodes it into generic maps, and answers a fixed allow with the
// same headers as the service. No authentication, no decision.
func baseline() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /authorize", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		var req baselineRequest
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if err != nil || req.Action == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"allow":false,"reason":"malformed request"}`+"\n")
			return
		}
		_ = json.NewEncoder(w).Encode(baselineDecision{Allow: true, Reason: "permitted by p3",
			DecisionID: "dec_aaaaaaaaaaaaaaaaaaaaaaaaaa", PolicyVersion: "0123456789abcdef", Revision: "1",
			Policies: []string{"p3"}})
	})
	return mux
}
