// Package ratelimit limits request rates for the API gateway, per key (a
// client id, an API key id, a source address…), either in one process
// (Local) or shared by all replicas through Redis (Redis, Shared).
//
// # GCRA
//
// Both limiters implement the generic cell rate algorithm, a token bucket
// that stores a single timestamp per key. A Limit of Rate events per Period
// with burst B has an emission interval T = Period/Rate. Each key has a
// theoretical arrival time TAT (initially "now", a full bucket). An event at
// time now is allowed when
//
//	max(TAT, now) + T - B×T <= now
//
// and then TAT becomes max(TAT, now) + T. A fresh key therefore admits
// exactly B events at once and then one every T; an idle key refills at one
// event per T up to B. From TAT follow all the answers: the bucket is full
// again after TAT - now (Result.ResetAfter, and the Redis key's expiry),
// (B×T - (TAT - now)) / T events remain, and a refused event could succeed
// after max(TAT, now) + T - B×T - now (Result.RetryAfter). Refused events do
// not change TAT, so hammering a limited key does not push its recovery
// further away.
//
// Local and Redis run the same integer arithmetic (in ns; the Redis clock
// has µs resolution), so they give the same answers for the same sequence of
// events.
//
// # Local or shared
//
// Local keeps buckets in memory, in sharded maps bounded by maxKeys, and
// costs well under a microsecond and no allocation per check. Each replica
// enforces the limit on its own, so N replicas behind a load balancer admit
// up to N times the limit. Redis keeps the buckets in Redis: one round trip
// per check, a Lua script that reads the Redis server's clock (never the
// replica's, so replicas with skewed clocks agree) and the limit holds across
// all replicas. Bucket keys are a prefix and a hash of the key, never the key
// itself.
//
// # Fail modes
//
// Shared puts Redis behind a circuit breaker: each call has a short timeout,
// and an error or timeout marks Redis down for a cool-off during which no
// call goes to Redis; then one request probes it and, on success, Redis is
// used again. While Redis is down a route chooses its FailMode: FailOpen
// answers from a Local limiter with the same Limit (per-replica limits:
// service continues, limits loosen by up to the number of replicas), and
// FailClosed refuses with ErrUnavailable (the gateway answers 503), for
// routes where exceeding the limit is worse than refusing service, such as
// credential endpoints (checklist BF-01, RL-04).
//
// WriteHeaders reports a Result in the RateLimit header fields of
// draft-ietf-httpapi-ratelimit-headers and Retry-After.
package ratelimit
