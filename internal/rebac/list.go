package rebac

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// A ListObjects cursor is "<reader page cursor>.<last returned id>", both
// base64url: the call resumes reading the candidate page that starts at the
// reader cursor, after the last id it returned.

func encodeListCursor(page, after string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(page)) + "." + enc.EncodeToString([]byte(after))
}

func decodeListCursor(c string) (page, after string, err error) {
	if c == "" {
		return "", "", nil
	}
	a, b, ok := strings.Cut(c, ".")
	enc := base64.RawURLEncoding
	pg, err1 := enc.DecodeString(a)
	af, err2 := enc.DecodeString(b)
	if !ok || err1 != nil || err2 != nil || len(c) > 4096 {
		return "", "", invalidf("cursor")
	}
	return string(pg), string(af), nil
}

// ListObjects returns the ids of objects of objectType on which subj has
// permission, at most limit (default 100, max 1000), and the cursor of the
// next page ("" only when there are no more). Candidates are read with
// Reader.ObjectIDs page by page and each page is checked as one batch. When
// a budget runs out after at least one page was examined, the call returns
// what it has with a cursor to continue: the list is never silently
// truncated.
func (c *Checker) ListObjects(ctx context.Context, at storage.Revision, objectType, permission string, subj Subject, cursor string, limit int) ([]string, string, error) {
	if at == 0 {
		return nil, "", invalidf("revision 0")
	}
	st := c.state.Load()
	if err := validateRequest(st.schema, Object{Type: objectType, ID: "x"}, permission, &subj); err != nil {
		return nil, "", err
	}
	pageCur, after, err := decodeListCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit)
	pageSize := min(max(limit*4, 100), readPage)
	ctx, cancel := context.WithTimeout(ctx, c.limits.Timeout)
	defer cancel()
	e := c.newEval(ctx, st.schema, at, subj)
	var out []string
	for pages := 0; ; pages++ {
		resume := encodeListCursor(pageCur, after)
		ids, next, err := c.r.ObjectIDs(ctx, at, objectType, pageCur, pageSize)
		if err == nil && next == pageCur && next != "" {
			err = fmt.Errorf("cursor did not advance")
		}
		if err != nil {
			if ctx.Err() != nil {
				err = e.ctxErr(ctx.Err())
				if pages > 0 {
					return out, resume, nil
				}
				return nil, "", err
			}
			return nil, "", fmt.Errorf("rebac: object ids: %w", err)
		}
		ids = afterID(ids, after)
		res, err := e.evalSet(ids, objectType, permission, 1)
		if err != nil {
			if stopped(err) && pages > 0 {
				return out, resume, nil
			}
			return nil, "", err
		}
		for i, id := range ids {
			if _, ok := res[id]; !ok {
				continue
			}
			out = append(out, id)
			if len(out) == limit {
				if i == len(ids)-1 && next == "" {
					return out, "", nil
				}
				return out, encodeListCursor(pageCur, id), nil
			}
		}
		if next == "" {
			return out, "", nil
		}
		pageCur, after = next, ""
	}
}

// afterID drops ids up to and including after: by position when after is
// in the page (whatever the store's collation), else by byte order.
func afterID(ids []string, after string) []string {
	if after == "" {
		return ids
	}
	if i := slices.Index(ids, after); i >= 0 {
		return ids[i+1:]
	}
	var out []string
	for _, id := range ids {
		if id > after {
			out = append(out, id)
		}
	}
	return out
}
