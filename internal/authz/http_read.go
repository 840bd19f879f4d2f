package authz

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

func (s *Service) handleExpand(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	m, ok := readObject(w, r, maxSingleBody, "object", "permission", "consistency")
	if !ok {
		return
	}
	obj, perm, err := objectAndPermission(m)
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	rev, err := s.atConsistency(r.Context(), m)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	if rev == 0 { // nothing written yet: an empty tree
		if err := s.knownPermission(obj.Type, perm); err != nil {
			s.writeEngineError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"tree": &treeJSON{Op: "leaf", Object: obj.String(), Relation: perm}, "revision": revString(rev)})
		return
	}
	tree, err := s.checker.Expand(r.Context(), rev, obj, perm)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tree": treeToJSON(tree), "revision": revString(rev)})
}

// treeJSON is the wire form of an expansion tree.
type treeJSON struct {
	Op        string      `json:"op"`
	Object    string      `json:"object,omitempty"`
	Relation  string      `json:"relation,omitempty"`
	Subjects  []string    `json:"subjects,omitempty"`
	Children  []*treeJSON `json:"children,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
}

func treeToJSON(t *rebac.Tree) *treeJSON {
	if t == nil {
		return nil
	}
	out := &treeJSON{Op: t.Op, Object: t.Object, Relation: t.Relation, Subjects: t.Subjects, Truncated: t.Truncated}
	for _, c := range t.Children {
		out.Children = append(out.Children, treeToJSON(c))
	}
	return out
}

// cursorAndLimit decodes the optional cursor and limit members.
func cursorAndLimit(m map[string]json.RawMessage) (string, int, error) {
	var cursor string
	var err error
	if raw, ok := m["cursor"]; ok {
		if cursor, err = str(raw, "cursor"); err != nil {
			return "", 0, err
		}
	}
	limit := 0
	if raw, ok := m["limit"]; ok {
		if err := json.Unmarshal(raw, &limit); err != nil || limit < 1 || limit > 1000 {
			return "", 0, badf("limit must be an integer between 1 and 1000")
		}
	}
	return cursor, limit, nil
}

func (s *Service) handleObjects(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	m, ok := readObject(w, r, maxSingleBody, "object_type", "permission", "subject", "cursor", "limit", "consistency")
	if !ok {
		return
	}
	typ, err := str(m["object_type"], "object_type")
	if err == nil && !typeName.MatchString(typ) {
		err = badf("object_type must match [a-z][a-z0-9_]{0,63}")
	}
	var perm, ss, cursor string
	var subj rebac.Subject
	var limit int
	if err == nil {
		perm, err = str(m["permission"], "permission")
	}
	if err == nil {
		ss, err = str(m["subject"], "subject")
	}
	if err == nil {
		subj, err = rebac.ParseSubject(ss)
	}
	if err == nil {
		cursor, limit, err = cursorAndLimit(m)
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
	var objs []string
	var next string
	if rev > 0 { // at revision 0 nothing is written yet: nothing to list
		objs, next, err = s.checker.ListObjects(r.Context(), rev, typ, perm, subj, cursor, limit)
	} else {
		err = s.knownPermission(typ, perm)
	}
	s.writeList(w, "objects", objs, next, rev, err)
}

// writeList answers a list call: the ids, the cursor and the revision, or
// the engine error.
func (s *Service) writeList(w http.ResponseWriter, member string, ids []string, next string, rev storage.Revision, err error) {
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{member: ids, "next_cursor": next, "revision": revString(rev)})
}

func (s *Service) handleSubjects(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	m, ok := readObject(w, r, maxSingleBody, "object", "permission", "subject_type", "cursor", "limit", "consistency")
	if !ok {
		return
	}
	obj, perm, err := objectAndPermission(m)
	var st, cursor string
	var limit int
	if err == nil {
		st, err = str(m["subject_type"], "subject_type")
	}
	if err == nil {
		cursor, limit, err = cursorAndLimit(m)
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
	var subs []string
	var next string
	if rev > 0 { // at revision 0 nothing is written yet: nothing to list
		subs, next, err = s.checker.ListSubjects(r.Context(), rev, obj, perm, st, cursor, limit)
	} else {
		err = s.knownPermission(obj.Type, perm)
	}
	s.writeList(w, "subjects", subs, next, rev, err)
}

// entityPath returns the validated {type} and {id} of an entities path.
func entityPath(r *http.Request) (string, string, error) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if !typeName.MatchString(typ) || !validID(id) {
		return "", "", badf("malformed entity type or id")
	}
	return typ, id, nil
}

func (s *Service) handlePutEntity(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	typ, id, err := entityPath(r)
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	m, ok := readObject(w, r, maxSingleBody, "attrs", "version")
	if !ok {
		return
	}
	attrs, ok := m["attrs"]
	if !ok || attrs[0] != '{' {
		writeError(w, http.StatusBadRequest, "invalid_request", "attrs must be a JSON object", false)
		return
	}
	version, err := parseVersion(m["version"])
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	rev, applied, err := s.store.PutEntity(r.Context(), storage.Entity{Type: typ, ID: id, Attrs: attrs, Version: version})
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	s.rev.observe(rev)
	writeJSON(w, http.StatusOK, map[string]any{"applied": applied, "revision": revString(rev)})
}

// parseVersion decodes an entity version: a JSON integer ≥ 1.
func parseVersion(raw json.RawMessage) (int64, error) {
	var v int64
	if raw == nil || json.Unmarshal(raw, &v) != nil || v < 1 {
		return 0, badf("version must be a positive integer")
	}
	return v, nil
}

func (s *Service) handleDeleteEntity(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	typ, id, err := entityPath(r)
	var q map[string][]string
	if err == nil {
		q, err = query(r, "version")
	}
	var version int64
	if err == nil {
		version, err = parseVersion(json.RawMessage(firstOf(q["version"])))
	}
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	rev, applied, err := s.store.DeleteEntity(r.Context(), typ, id, version)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	s.rev.observe(rev)
	writeJSON(w, http.StatusOK, map[string]any{"applied": applied, "revision": revString(rev)})
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// changeJSON is the wire form of a change.
type changeJSON struct {
	Revision string      `json:"revision"`
	Kind     string      `json:"kind"`
	Tuple    string      `json:"tuple,omitempty"`
	Entity   *entityJSON `json:"entity,omitempty"`
	At       time.Time   `json:"at"`
}

type entityJSON struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Attrs   json.RawMessage `json:"attrs,omitempty"`
}

var changeKinds = map[storage.ChangeKind]string{
	storage.ChangeTupleTouch:   "tuple_touch",
	storage.ChangeTupleDelete:  "tuple_delete",
	storage.ChangeEntityPut:    "entity_put",
	storage.ChangeEntityDelete: "entity_delete",
}

func (s *Service) handleChanges(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	q, err := query(r, "after", "limit")
	var after storage.Revision
	var limit int
	if err == nil && q.Get("after") != "" {
		after, err = parseRevision(q.Get("after"))
	}
	if err == nil {
		limit, err = parseLimit(q.Get("limit"))
	}
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	changes, err := s.store.Changes(r.Context(), after, limit)
	if err != nil {
		s.writeEngineError(w, err)
		return
	}
	out := make([]changeJSON, 0, len(changes))
	next := after
	for _, c := range changes {
		cj := changeJSON{Revision: revString(c.Revision), Kind: changeKinds[c.Kind], At: c.At.UTC()}
		switch c.Kind {
		case storage.ChangeTupleTouch, storage.ChangeTupleDelete:
			cj.Tuple = rebac.FormatTuple(c.Tuple)
		default:
			cj.Entity = &entityJSON{Type: c.Entity.Type, ID: c.Entity.ID, Version: c.Entity.Version, Attrs: c.Entity.Attrs}
		}
		out = append(out, cj)
		next = max(next, c.Revision)
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": out, "next": revString(next)})
}

func (s *Service) handleDecisions(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	q, err := query(r, "principal", "allow", "since", "limit", "action", "disagreements")
	f := decisionlog.Filter{Principal: q.Get("principal"), Action: q.Get("action"), Limit: 100}
	if err == nil {
		if a := q.Get("allow"); a != "" {
			b, perr := strconv.ParseBool(a)
			if perr != nil || (a != "true" && a != "false") {
				err = badf(`allow must be "true" or "false"`)
			}
			f.Allow = &b
		}
	}
	if err == nil {
		if since := q.Get("since"); since != "" {
			if d, perr := time.ParseDuration(since); perr == nil && d > 0 {
				f.Since = s.now().Add(-d)
			} else if t, perr := time.Parse(time.RFC3339, since); perr == nil {
				f.Since = t
			} else {
				err = badf("since must be a duration (1h) or an RFC 3339 time")
			}
		}
	}
	if err == nil && q.Get("limit") != "" {
		f.Limit, err = parseLimit(q.Get("limit"))
	}
	if err == nil {
		switch q.Get("disagreements") {
		case "", "false":
		case "true":
			f.Disagreements = true
		default:
			err = badf(`disagreements must be "true" or "false"`)
		}
	}
	if err != nil {
		writeRequestError(w, err, false)
		return
	}
	entries := s.log.Recent(f)
	if entries == nil {
		entries = []decisionlog.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": entries})
}
