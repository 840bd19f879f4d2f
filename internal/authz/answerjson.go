package authz

import (
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
)

// appendDecision appends d as json.Encoder.Encode writes it (the same
// bytes, newline included) without reflection.
func appendDecision(b []byte, d *decisionJSON) []byte {
	b = strconv.AppendBool(append(b, `{"allow":`...), d.Allow)
	b = decisionlog.AppendJSONString(append(b, `,"reason":`...), d.Reason)
	b = decisionlog.AppendJSONString(append(b, `,"decision_id":`...), d.DecisionID)
	b = decisionlog.AppendJSONString(append(b, `,"policy_version":`...), d.PolicyVersion)
	b = decisionlog.AppendJSONString(append(b, `,"revision":`...), d.Revision)
	b = appendStringList(append(b, `,"policies":`...), d.Policies)
	b = append(b, `,"relations":`...)
	if d.Relations == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range d.Relations {
			if i > 0 {
				b = append(b, ',')
			}
			b = decisionlog.AppendJSONString(append(b, `{"check":`...), r.Check)
			b = strconv.AppendBool(append(b, `,"allowed":`...), r.Allowed)
			if len(r.Path) > 0 {
				b = appendStringList(append(b, `,"path":`...), r.Path)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendStringList(append(b, `,"errors":`...), d.Errors)
	return append(b, "}\n"...)
}

func appendStringList(b []byte, l []string) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = decisionlog.AppendJSONString(b, s)
	}
	return append(b, ']')
}

// writeDecision is writeJSON(w, http.StatusOK, d) for one decision.
func writeDecision(w http.ResponseWriter, d decisionJSON) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(appendDecision(make([]byte, 0, 512), &d))
}
