package authz

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// API scopes (docs/authz.md, HTTP API).
const (
	ScopeCheck = "authz:check"
	ScopeWrite = "authz:write"
	ScopeRead  = "authz:read"
	ScopeAudit = "authz:audit"
)

// realm is the WWW-Authenticate realm of the API.
const realm = "gatehouse-authz"

// Handler returns the HTTP API of docs/authz.md.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.route(mux, "/authorize", ScopeCheck, true, map[string]handlerFunc{http.MethodPost: s.handleAuthorize})
	s.route(mux, "/authorize/batch", ScopeCheck, true, map[string]handlerFunc{http.MethodPost: s.handleBatch})
	s.route(mux, "/relationships", "", false, map[string]handlerFunc{
		http.MethodPost: s.scoped(ScopeWrite, s.handleWrite),
		http.MethodGet:  s.scoped(ScopeRead, s.handleReadTuples),
	})
	s.route(mux, "/relationships/check", ScopeCheck, false, map[string]handlerFunc{http.MethodPost: s.handleCheck})
	s.route(mux, "/relationships/expand", ScopeCheck, false, map[string]handlerFunc{http.MethodPost: s.handleExpand})
	s.route(mux, "/relationships/objects", ScopeCheck, false, map[string]handlerFunc{http.MethodPost: s.handleObjects})
	s.route(mux, "/relationships/subjects", ScopeCheck, false, map[string]handlerFunc{http.MethodPost: s.handleSubjects})
	s.route(mux, "/entities/{type}/{id}", ScopeWrite, false, map[string]handlerFunc{
		http.MethodPut: s.handlePutEntity, http.MethodDelete: s.handleDeleteEntity,
	})
	s.route(mux, "/changes", ScopeRead, false, map[string]handlerFunc{http.MethodGet: s.handleChanges})
	s.route(mux, "/decisions", ScopeAudit, false, map[string]handlerFunc{http.MethodGet: s.handleDecisions})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint", false)
	})
	return mux
}

// handlerFunc serves an authenticated request; caller is the API caller's
// claims.
type handlerFunc func(w http.ResponseWriter, r *http.Request, caller *auth.Claims)

// scoped marks h as needing scope (for paths whose methods differ).
func (s *Service) scoped(scope string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, caller *auth.Claims) {
		if !caller.HasScope(scope) {
			writeScopeError(w, scope, false)
			return
		}
		h(w, r, caller)
	}
}

// route registers path: method check (405), caller authentication (401),
// scope (403), Content-Type for bodies (415), then the method's handler.
func (s *Service) route(mux *http.ServeMux, path, scope string, decision bool, methods map[string]handlerFunc) {
	allow := make([]string, 0, len(methods))
	for m := range methods {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		h, ok := methods[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", decision)
			return
		}
		caller, ok := s.authenticate(w, r, decision)
		if !ok {
			return
		}
		if scope != "" && !caller.HasScope(scope) {
			writeScopeError(w, scope, decision)
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json", decision)
				return
			}
		}
		h(w, r, caller)
	})
}

// authenticate verifies the API caller's bearer token.
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request, decision bool) (*auth.Claims, bool) {
	tok, err := auth.BearerToken(r.Header)
	if err == nil {
		var c *auth.Claims
		if c, err = s.callers.Authenticate(r.Context(), tok); err == nil {
			return c, true
		}
	}
	challenge := `Bearer realm="` + realm + `"`
	switch {
	case errors.Is(err, auth.ErrNoToken):
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a bearer token is required", decision)
	case errors.Is(err, auth.ErrInvalidRequest):
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_request"`)
		writeError(w, http.StatusBadRequest, "invalid_request", "malformed Authorization header", decision)
	case errors.Is(err, auth.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "token verification is not available yet", decision)
	default:
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid", decision)
	}
	return nil, false
}

func writeScopeError(w http.ResponseWriter, scope string, decision bool) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="insufficient_scope", scope="`+scope+`"`)
	writeError(w, http.StatusForbidden, "insufficient_scope", "scope "+scope+" required", decision)
}

// callerName identifies an API caller in the decision log.
func callerName(c *auth.Claims) string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return c.Subject
}

// writeError writes {"error", "error_description"} (plus "allow": false on
// decision endpoints).
func writeError(w http.ResponseWriter, status int, code, desc string, decision bool) {
	body := map[string]any{"error": code, "error_description": desc}
	if decision {
		body["allow"] = false
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads at most limit bytes; larger bodies are refused.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &tooLarge{limit: limit}
		}
		return nil, badf("cannot read request body")
	}
	return body, nil
}

type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	if e.limit >= 1<<20 {
		return "request body exceeds " + strconv.FormatInt(e.limit>>20, 10) + " MiB"
	}
	return "request body exceeds " + strconv.FormatInt(e.limit>>10, 10) + " KiB"
}

// writeRequestError answers a decoding error.
func writeRequestError(w http.ResponseWriter, err error, decision bool) {
	var tl *tooLarge
	if errors.As(err, &tl) {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request", tl.Error(), decision)
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_request", err.Error(), decision)
}

// decisionJSON is the wire form of a decision.
type decisionJSON struct {
	Allow         bool            `json:"allow"`
	Reason        string          `json:"reason"`
	DecisionID    string          `json:"decision_id"`
	PolicyVersion string          `json:"policy_version"`
	Revision      string          `json:"revision"`
	Policies      []string        `json:"policies"`
	Relations     []RelationCheck `json:"relations"`
	Errors        []string        `json:"errors"`
}

func toJSON(r Result) decisionJSON {
	d := decisionJSON{Allow: r.Allow, Reason: r.Reason, DecisionID: r.DecisionID, PolicyVersion: r.PolicyVersion,
		Revision: strconv.FormatUint(uint64(r.Revision), 10), Policies: r.Policies, Relations: r.Relations, Errors: r.Errors}
	if d.Policies == nil {
		d.Policies = []string{}
	}
	if d.Relations == nil {
		d.Relations = []RelationCheck{}
	}
	if d.Errors == nil {
		d.Errors = []string{}
	}
	return d
}

func (s *Service) handleAuthorize(w http.ResponseWriter, r *http.Request, caller *auth.Claims) {
	body, err := readBody(w, r, maxSingleBody)
	if err != nil {
		writeRequestError(w, err, true)
		return
	}
	req, err := decodeAuthorize(body)
	if err != nil {
		writeRequestError(w, err, true)
		return
	}
	results, ok := s.decideAll(r.Context(), w, req, caller)
	if ok {
		writeDecision(w, toJSON(results[0]))
	}
}

// batchBudgetFactor × decision_timeout bounds a whole batch.
const batchBudgetFactor = 4

func (s *Service) handleBatch(w http.ResponseWriter, r *http.Request, caller *auth.Claims) {
	body, err := readBody(w, r, maxBatchBody)
	if err != nil {
		writeRequestError(w, err, true)
		return
	}
	req, err := decodeBatch(body)
	if err != nil {
		writeRequestError(w, err, true)
		return
	}
	// The whole batch shares a budget of 4 decisions' time: 100 slow
	// checks must not hold the request for 100 × decision_timeout. Checks
	// that run out of it deny like any timed-out decision.
	ctx, cancel := context.WithTimeout(r.Context(), batchBudgetFactor*s.timeout)
	defer cancel()
	results, ok := s.decideAll(ctx, w, req, caller)
	if !ok {
		return
	}
	out := make([]decisionJSON, len(results))
	for i, res := range results {
		out[i] = toJSON(res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// decideAll resolves the principal once and decides every check. A
// revision token from the future is answered 400 here; a refused principal
// token and every other failure is a (logged) deny of each check.
func (s *Service) decideAll(ctx context.Context, w http.ResponseWriter, req *authorizeRequest, caller *auth.Claims) ([]Result, bool) {
	principal, token, err := s.resolvePrincipal(ctx, req.principal)
	if err != nil {
		// The question cannot be asked: every check is a logged deny.
		out := make([]Result, len(req.checks))
		for i, c := range req.checks {
			out[i] = s.decide(ctx, Input{Token: token, Action: c.action, Resource: c.resource, Context: c.context,
				Caller: callerName(caller)}, err.Error())
		}
		return out, true
	}
	if req.atLeast > 0 {
		if _, err := s.rev.at(ctx, req.atLeast); err != nil {
			if errors.Is(err, storage.ErrRevisionAhead) {
				writeError(w, http.StatusBadRequest, "invalid_request", "revision token is from the future", true)
			} else {
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "relation store unavailable", true)
			}
			return nil, false
		}
	}
	out := make([]Result, len(req.checks))
	for i, c := range req.checks {
		out[i] = s.Decide(ctx, Input{Principal: principal, Token: token, Action: c.action, Resource: c.resource,
			Context: c.context, AtLeast: req.atLeast, Caller: callerName(caller)})
	}
	return out, true
}
