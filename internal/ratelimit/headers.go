package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// WriteHeaders sets the RateLimit header fields of
// draft-ietf-httpapi-ratelimit-headers for r under l:
//
//	RateLimit-Limit:     the burst capacity
//	RateLimit-Remaining: requests left now
//	RateLimit-Reset:     seconds until the bucket is full, rounded up
//	RateLimit-Policy:    "<burst>;w=<period in seconds, rounded up, min 1>"
//
// and, when the request was refused, Retry-After in whole seconds rounded up
// (at least 1).
func WriteHeaders(h http.Header, r Result, l Limit) {
	h.Set("RateLimit-Limit", strconv.Itoa(r.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(r.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.ResetAfter), 10))
	h.Set("RateLimit-Policy", strconv.Itoa(l.burst())+";w="+strconv.FormatInt(max(ceilSeconds(l.Period), 1), 10))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(r.RetryAfter), 1), 10))
	}
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}
