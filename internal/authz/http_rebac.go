package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// revString is the wire form of a revision token.
func revString(r storage.Revision) string { return strconv.FormatUint(uint64(r), 10) }

// readObject reads a strict single-object body limited to limit bytes and
// returns its members, refusing names not in allowed.
func readObject(w http.ResponseWriter, r *http.Request, limit int64, allowed ...string) (map[string]json.RawMessage, bool) {
	body, err := readBody(w, r, limit)
	if err == nil {
		if err = checkStrict(body); err != nil {
			err = &badRequest{msg: "malformed request: " + err.Error()}
		}
	}
	var m map[string]json.RawMessage
	if err == nil {
		m, err = members(body, "request", allowed...)
	}
	if err != nil {
		writeRequestError(w, err, false)
		return nil, false
	}
	return m, true
}

// query returns r's query parameters, refusing unknown and repeated ones.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badf("malformed query string")
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return nil, badf("unknown query parameter %s", quoteName(k))
		}
		if len(v) > 1 {
			return nil, badf("query parameter %s repeated", quoteName(k))
		}
	}
	return q, nil
}

// parseLimit decodes an optional page size (1–1000).
func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 || strconv.Itoa(n) != s {
		return 0, badf("limit must be an integer between 1 and 1000")
	}
	return n, nil
}

// writeEngineError answers a rebac or storage failure.
func (s *Service) writeEngineError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, storage.ErrRevisionAhead):
		writeError(w, http.StatusBadRequest, "invalid_request", "revision token is from the future", false)
	case errors.Is(err, rebac.ErrInvalid), errors.Is(err, rebac.ErrUnknown), errors.Is(err, storage.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error(), false)
	case errors.Is(err, rebac.ErrBudget):
		writeError(w, http.StatusUnprocessableEntity, "budget_exceeded", err.Error(), false)
	default:
		var br *badRequest
		if errors.As(err, &br) {
			writeError(w, http.StatusBadRequest, "invalid_request", br.msg, false)
			return
		}
		s.logger.Warn("authz: relation store request failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "relation store unavailable", false)
	}
}

func (s *Service) handleWrite(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	m, ok := readObject(w, r, maxBatchBody, "writes")
	if !ok {
		return
	}
	writes, err := decodeWrites(m["writes"], s.checker.Schema())
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	rev, err := s.store.WriteTuples(r.Context(), writes)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	s.rev.observe(rev) // AZ-05: a local write is visible at once
	writeJSON(w, http.StatusOK, map[string]string{"revision": revString(rev)})
}

// decodeWrites decodes and validates every write; all problems are listed
// with their index and nothing is written when there is any.
func decodeWrites(raw json.RawMessage, schema *rebac.Schema) ([]storage.TupleWrite, error) {
	if raw == nil {
		return nil, badf("writes is required")
	}
	var list []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return nil, badf("writes must be an array")
	}
	if len(list) == 0 || len(list) > maxWrites {
		return nil, badf("writes must hold 1 to %d operations", maxWrites)
	}
	out := make([]storage.TupleWrite, 0, len(list))
	var problems []string
	seen := make(map[storage.RelationTuple]int, len(list))
	for i, item := range list {
		tw, err := decodeWrite(item, schema)
		if err != nil {
			problems = append(problems, fmt.Sprintf("writes[%d]: %v", i, err))
			continue
		}
		if j, dup := seen[tw.Tuple]; dup {
			problems = append(problems, fmt.Sprintf("writes[%d]: same tuple as writes[%d]", i, j))
			continue
		}
		seen[tw.Tuple] = i
		out = append(out, tw)
	}
	if len(problems) > 0 {
		return nil, badf("invalid writes: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

func decodeWrite(raw json.RawMessage, schema *rebac.Schema) (storage.TupleWrite, error) {
	m, err := members(raw, "write", "op", "tuple")
	if err != nil {
		return storage.TupleWrite{}, err
	}
	op, err := str(m["op"], "op")
	if err != nil {
		return storage.TupleWrite{}, err
	}
	var tw storage.TupleWrite
	switch op {
	case "touch":
		tw.Op = storage.TupleTouch
	case "delete":
		tw.Op = storage.TupleDelete
	default:
		return tw, badf(`op must be "touch" or "delete"`)
	}
	ts, err := str(m["tuple"], "tuple")
	if err != nil {
		return tw, err
	}
	if tw.Tuple, err = rebac.ParseTuple(ts); err != nil {
		return tw, err
	}
	if tw.Op == storage.TupleDelete {
		// A delete only takes access away: a tuple written under an older
		// schema that no longer accepts it must stay revocable (else it
		// comes back to life when the schema accepts it again).
		return tw, nil
	}
	if schema == nil {
		return tw, errors.New("no relationship schema loaded")
	}
	if err := schema.ValidateTuple(tw.Tuple); err != nil {
		return tw, err
	}
	return tw, nil
}

// atRevision picks the read revision for an optional token string.
func (s *Service) atRevision(ctx context.Context, token string) (storage.Revision, error) {
	var atLeast storage.Revision
	if token != "" {
		var err error
		if atLeast, err = parseRevision(token); err != nil {
			return 0, err
		}
	}
	return s.rev.at(ctx, atLeast)
}

// atConsistency picks the read revision for an optional consistency member.
func (s *Service) atConsistency(ctx context.Context, m map[string]json.RawMessage) (storage.Revision, error) {
	var atLeast storage.Revision
	if raw, ok := m["consistency"]; ok {
		var err error
		if atLeast, err = consistency(raw); err != nil {
			return 0, err
		}
	}
	return s.rev.at(ctx, atLeast)
}

func (s *Service) handleReadTuples(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	q, err := query(r, "object_type", "object_id", "relation", "subject", "cursor", "limit", "at_least_as_fresh")
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	f := storage.TupleFilter{ObjectType: q.Get("object_type"), Relation: q.Get("relation")}
	if !typeName.MatchString(f.ObjectType) {
		writeError(w, http.StatusBadRequest, "invalid_request", "object_type is required", false)
		return
	}
	if id := q.Get("object_id"); id != "" {
		f.ObjectIDs = []string{id}
	}
	if sub := q.Get("subject"); sub != "" {
		sj, err := rebac.ParseSubject(sub)
		if err != nil {
			writeRequestError(w, err, false)
			return
		}
		rel := sj.Relation
		f.SubjectType, f.SubjectID, f.SubjectRelation = sj.Type, sj.ID, &rel
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	rev, err := s.atRevision(r.Context(), q.Get("at_least_as_fresh"))
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	tuples, next, err := s.store.ReadTuples(r.Context(), rev, f, q.Get("cursor"), limit)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	out := make([]string, len(tuples))
	for i, t := range tuples {
		out[i] = rebac.FormatTuple(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tuples": out, "next_cursor": next, "revision": revString(rev)})
}

func (s *Service) handleCheck(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	m, ok := readObject(w, r, maxSingleBody, "object", "permission", "subject", "consistency")
	if !ok {
		return
	}
	obj, perm, err := objectAndPermission(m)
	var subj rebac.Subject
	if err == nil {
		var ss string
		if ss, err = str(m["subject"], "subject"); err == nil {
			subj, err = rebac.ParseSubject(ss)
		}
	}
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	rev, err := s.atConsistency(r.Context(), m)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	if rev == 0 { // nothing written yet: no tuple can grant anything
		if err := s.knownPermission(obj.Type, perm); err != nil {
			s.writeEngineError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"allowed": false, "path": []string{}, "revision": revString(rev)})
		return
	}
	res, err := s.checker.Check(r.Context(), rev, obj, perm, subj)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	path := res.Path
	if path == nil {
		path = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"allowed": res.Allowed, "path": path, "revision": revString(rev)})
}

// knownPermission reports an unknown object type or permission as
// rebac.ErrUnknown, as the checker would on a store with tuples.
func (s *Service) knownPermission(typ, perm string) error {
	if !s.checker.Schema().HasPermission(typ, perm) {
		return fmt.Errorf("%w: %s#%s", rebac.ErrUnknown, typ, perm)
	}
	return nil
}

// objectAndPermission decodes the object and permission members.
func objectAndPermission(m map[string]json.RawMessage) (rebac.Object, string, error) {
	os, err := str(m["object"], "object")
	if err != nil {
		return rebac.Object{}, "", err
	}
	obj, err := rebac.ParseObject(os)
	if err != nil {
		return rebac.Object{}, "", err
	}
	perm, err := str(m["permission"], "permission")
	if err != nil {
		return rebac.Object{}, "", err
	}
	if !typeName.MatchString(perm) {
		return rebac.Object{}, "", badf("permission must match [a-z][a-z0-9_]{0,63}")
	}
	return obj, perm, nil
}
