#!/usr/bin/env bash
# bench/workload.sh: workload identity's performance (docs/workload.md), with
# the baselines run in the same command (see bench/README.md, "Workload
# identity"). Everything runs from bench/mtlsbench:
#
#   1. issuance: the in-process baseline first (ca.CA.IssueCSR on one
#      goroutine: the per-core ceiling), then the real CA and its HTTPS API
#      (mtlsbench ca, SQLite) in one process and the load (mtlsbench issue)
#      in another: BENCH_WL_CONCURRENCY workers, each bootstrapped with a join
#      token, renewing in a closed loop over keep-alive mTLS with CSRs from a
#      pool generated before the clock starts. The CA's CPU time is read from
#      /proc/<pid>/stat. Goal: >= 2,000 issuances per CA CPU-second (per core).
#   2. handshakes (in process, loopback, one at a time): TLS 1.3 full and
#      resumed with plain TLS (server authentication only, the baseline) and
#      with workload mTLS (ServerTLSConfig/ClientTLSConfig); CPU per handshake
#      (client + server) and ratios.
#   3. throughput: one process (mtlsbench serve) with an HTTPS server on plain
#      TLS and one on workload mTLS + workload.Middleware, the same handler;
#      mtlsbench get drives each with BENCH_WL_CONCURRENCY keep-alive
#      connections, rounds interleaved, the best round kept; ratio mTLS/TLS.
#
# Writes bench/results/workload.md. Exits non-zero only if a tool failed or
# a run had failed requests, never because a goal was missed.
#
# Environment (all optional):
#   BENCH_WL_PARTS        parts to run                     (default "issue handshake http")
#   BENCH_WL_CONCURRENCY  workers/connections              (default 16)
#   BENCH_WL_DURATION     measured time per load run       (default 5s)
#   BENCH_WL_WARMUP       unmeasured warm-up per load run  (default 1s)
#   BENCH_WL_HANDSHAKES   timed handshakes per target      (default 1000)
#   BENCH_WL_CALLS        in-process IssueCSR calls        (default 5000)
#   BENCH_WL_H2           1: also measure HTTP/2 in part 3 (default off)
#   BENCH_WL_PROFILE      1: CPU profiles of the CA and of the HTTPS servers
#                         (bench/results/workload-{ca,serve}.{pprof,txt})
#   BENCH_COUNT           rounds of every part             (default 3)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCRIPT_NAME=workload.sh
LOG_TAG=wlbench

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PARTS=${BENCH_WL_PARTS:-issue handshake http}
CONC=${BENCH_WL_CONCURRENCY:-16}
DURATION=${BENCH_WL_DURATION:-5s}
WARMUP=${BENCH_WL_WARMUP:-1s}
HANDSHAKES=${BENCH_WL_HANDSHAKES:-1000}
CALLS=${BENCH_WL_CALLS:-5000}
H2=${BENCH_WL_H2:-}
PROFILE=${BENCH_WL_PROFILE:-}
COUNT=${BENCH_COUNT:-3}
CLK_TCK=$(getconf CLK_TCK)
RESULTS="$ROOT/bench/results"
OUT="$RESULTS/workload.md"

require_tools jq getconf
for v in COUNT CONC HANDSHAKES CALLS; do
	require_posint "$v" "${!v}"
done
for d in "$DURATION" "$WARMUP"; do
	check_duration "$d" 5s
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-wlbench.XXXXXX")
SRV_PID=""
FAIL=0

stop_server() {
	stop_pid "$SRV_PID"
	SRV_PID=""
}
cleanup() {
	stop_server
	rm -rf "$WORK"
}
set_traps

cd "$ROOT"
mkdir -p "$RESULTS"
log "building bench/mtlsbench"
go build -o "$WORK/mtlsbench" ./bench/mtlsbench
START_LOAD=$(load_avg)
RUNS="$WORK/runs.jsonl"
: >"$RUNS"

# record appends JSON lines (stdin) to RUNS, with extra fields; an error
# count above 0 marks the run failed.
record() { # jq-object-to-add
	local line
	while IFS= read -r line; do
		jq -c ". + $1" <<<"$line" | tee -a "$RUNS" >&2
		if [[ $(jq -r '.errors // 0' <<<"$line") != 0 ]]; then
			FAIL=1
		fi
	done
}

# bench_json runs an in-process mtlsbench part and records its lines.
bench_json() {
	if ! "$WORK/mtlsbench" "$@" >"$WORK/part.jsonl" 2>"$WORK/part.err"; then
		log "mtlsbench $1 failed:"
		cat "$WORK/part.err" >&2
		FAIL=1
	fi
	[[ -s "$WORK/part.err" ]] && cat "$WORK/part.err" >&2
	record '{}' <"$WORK/part.jsonl"
}

# start_server starts "mtlsbench <sub> -dir DIR" and waits for its JSON line.
start_server() { # sub dir
	local sub=$1 dir=$2
	mkdir -p "$dir"
	"$WORK/mtlsbench" "$sub" -dir "$dir" "${@:3}" >"$dir/addr.json" 2>"$dir/server.log" &
	SRV_PID=$!
	for _ in $(seq 1 300); do
		[[ -s "$dir/addr.json" ]] && return 0
		if ! kill -0 "$SRV_PID" 2>/dev/null; then
			log "mtlsbench $sub exited during startup:"
			cat "$dir/server.log" >&2
			SRV_PID=""
			return 1
		fi
		sleep 0.1
	done
	log "mtlsbench $sub not ready after 30s"
	cat "$dir/server.log" >&2
	return 1
}

# profile_args prints the -cpuprofile flag of server NAME when profiling.
profile_args() {
	[[ "$PROFILE" == 1 ]] && echo "-cpuprofile $RESULTS/workload-$1.pprof"
	return 0
}

# profile_top writes the top functions of server NAME's profile, once it stopped.
profile_top() {
	[[ "$PROFILE" == 1 && -s "$RESULTS/workload-$1.pprof" ]] || return 0
	go tool pprof -top -nodecount=40 "$WORK/mtlsbench" "$RESULTS/workload-$1.pprof" >"$RESULTS/workload-$1.txt" 2>/dev/null &&
		log "profile: bench/results/workload-$1.txt" || log "go tool pprof failed on workload-$1.pprof"
}

# run_load runs a load subcommand against the running server and records
# its line with the server's CPU per request (bootstrap issuances included).
run_load() { # part round sub args...
	local part=$1 round=$2 out t0 t1
	shift 2
	log "$part round $round/$COUNT: $*"
	t0=$(cpu_ticks "$SRV_PID")
	if ! out=$("$WORK/mtlsbench" "$@" -c "$CONC" -d "$DURATION" -warmup "$WARMUP" 2>"$WORK/load.err"); then
		log "mtlsbench $1 failed ($part round $round):"
		cat "$WORK/load.err" >&2
		FAIL=1
		return 0
	fi
	t1=$(cpu_ticks "$SRV_PID")
	[[ -s "$WORK/load.err" ]] && cat "$WORK/load.err" >&2
	record "$(jq -nc --arg p "$part" --argjson r "$round" --argjson ticks "$((t1 - t0))" --argjson hz "$CLK_TCK" --argjson n "$(jq '.sent + (.bootstrap // 0)' <<<"$out")" \
		'{part:$p, round:$r, server_cpu_s: ($ticks / $hz), server_cpu_us_per_req: (if $n > 0 then ($ticks * 1e6 / $hz / $n * 10 | round / 10) else 0 end)}')" <<<"$out"
}

# ------------------------------------------------------------- issuance
if has issue; then
	log "issue: in-process baseline, $CALLS IssueCSR calls"
	bench_json baseline -n "$CALLS" -warmup $((CALLS / 10))
	# shellcheck disable=SC2046
	if start_server ca "$WORK/ca" -tokens $((CONC * COUNT)) $(profile_args ca); then
		CA_URL=$(jq -er .url "$WORK/ca/addr.json")
		log "CA pid $SRV_PID at $CA_URL"
		for r in $(seq 1 "$COUNT"); do
			run_load issue "$r" issue -url "$CA_URL" -dir "$WORK/ca" -skip $(((r - 1) * CONC))
		done
		kill -0 "$SRV_PID" 2>/dev/null || { log "the CA died"; FAIL=1; }
		[[ -s "$WORK/ca/server.log" ]] && { log "the CA wrote to stderr:"; head -5 "$WORK/ca/server.log" >&2; }
		stop_server
		profile_top ca
	else
		FAIL=1
	fi
fi

# ----------------------------------------------------------- handshakes
if has handshake; then
	log "handshake: $HANDSHAKES per target, $COUNT rounds"
	bench_json handshake -n "$HANDSHAKES" -warmup $((HANDSHAKES / 10)) -rounds "$COUNT"
fi

# ----------------------------------------------------------- throughput
if has http; then
	# shellcheck disable=SC2046
	if start_server serve "$WORK/srv" $(profile_args serve); then
		TLS_URL=$(jq -er .tls "$WORK/srv/addr.json")
		MTLS_URL=$(jq -er .mtls "$WORK/srv/addr.json")
		log "serve pid $SRV_PID: plain TLS $TLS_URL, mTLS $MTLS_URL"
		for r in $(seq 1 "$COUNT"); do
			run_load http "$r" get -url "$TLS_URL" -dir "$WORK/srv" -target tls
			run_load http "$r" get -url "$MTLS_URL" -dir "$WORK/srv" -target mtls
			if [[ "$H2" == 1 ]]; then
				run_load http "$r" get -url "$TLS_URL" -dir "$WORK/srv" -target tls -h2
				run_load http "$r" get -url "$MTLS_URL" -dir "$WORK/srv" -target mtls -h2
			fi
		done
		kill -0 "$SRV_PID" 2>/dev/null || { log "mtlsbench serve died"; FAIL=1; }
		[[ -s "$WORK/srv/server.log" ]] && { log "mtlsbench serve wrote to stderr:"; head -5 "$WORK/srv/server.log" >&2; }
		stop_server
		profile_top serve
	else
		FAIL=1
	fi
fi

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS"
{
	echo "# Gatehouse workload identity benchmark"
	echo
	env_lines "$ROOT" "$START_LOAD"
	echo "- command: BENCH_WL_PARTS=\"$PARTS\" BENCH_WL_CONCURRENCY=$CONC BENCH_WL_DURATION=$DURATION BENCH_WL_WARMUP=$WARMUP BENCH_WL_HANDSHAKES=$HANDSHAKES BENCH_WL_CALLS=$CALLS BENCH_WL_H2=$H2 BENCH_COUNT=$COUNT bash bench/workload.sh"
	echo "- load runs: $CONC workers, each on its own keep-alive connection, $WARMUP warm-up, $DURATION measured, closed loop; servers and load generator are separate processes on the same cores"
	echo
	ISSUE_RUN=false
	has issue && ISSUE_RUN=true
	jq -rs --argjson count "$COUNT" --argjson issue_run "$ISSUE_RUN" -f /dev/stdin "$RUNS" <<'JQ'
def r(n): (. * pow(10; n) | round) / pow(10; n);
def sel(b; t): map(select(.bench == b and .target == t));
def errs(b; t): sel(b; t) | map(.errors) | add // 0;
def verdict(ok): if ok then "pass" else "MISS" end;
def ratio(a; b): if a != null and b != null and b > 0 then (a / b | r(3) | tostring) else "?" end;
. as $all
| ($all | sel("baseline"; "IssueCSR") | first) as $base
| ($all | sel("issue"; "renewal")) as $iss
| ($iss | max_by(.rps)) as $ibest
| ($iss | map(select(.server_cpu_us_per_req > 0)) | min_by(.server_cpu_us_per_req)) as $icpu
| (["tls-full", "tls-resumed", "mtls-full", "mtls-resumed"] | map(. as $t | {key: $t, value: ($all | sel("handshake"; $t) | min_by(.cpu_us_per_handshake))}) | from_entries) as $hs
| (["tls", "mtls", "tls-h2", "mtls-h2"] | map(. as $t | {key: $t, value: ($all | sel("get"; $t) | max_by(.rps))}) | from_entries) as $h
| "## Goals and ratios\n",
  "| measure | value | goal / ratio |",
  "|---|---:|---|",
  (if $icpu then (1e6 / $icpu.server_cpu_us_per_req | round) as $pc
     | "| SVID issuances per CA CPU-second (= per core), renewal over mTLS, c=\($icpu.concurrency) (round with the least CA CPU per issuance: \($icpu.server_cpu_us_per_req) µs) | \($pc) | ≥ 2,000 \(verdict($pc >= 2000)) |"
   elif $issue_run then "| SVID issuances per CA CPU-second | missing | ≥ 2,000 MISS |" else empty end),
  (if $ibest then "| SVID issuances/s end to end (best of \($count) rounds), p50 / p99 | \($ibest.rps) /s, \($ibest.p50_ms) / \($ibest.p99_ms) ms | reported |"
   elif $issue_run then "| SVID issuances/s end to end | missing | reported |" else empty end),
  (if $base then (1e6 / $base.cpu_us_per_issue | round) as $bc
     | "| baseline: in-process ca.IssueCSR on one goroutine, per CPU-second (per-core ceiling; \($base.cpu_us_per_issue) µs each, \($base.per_s)/s wall) | \($bc) | API ÷ in-process: \(if $icpu then ratio(1e6 / $icpu.server_cpu_us_per_req; $bc) else "?" end) |"
   elif $issue_run then "| baseline: in-process ca.IssueCSR | missing | |" else empty end),
  (if $hs["tls-full"] then "| full TLS 1.3 handshake, plain TLS (server authentication only): CPU µs, client + server | \($hs["tls-full"].cpu_us_per_handshake) | baseline 1.000 |" else empty end),
  (if $hs["mtls-full"] then "| full mTLS handshake (workload SVIDs, VerifyConnection: x509svid.Verify + authorizer, both sides) | \($hs["mtls-full"].cpu_us_per_handshake) | ÷ full TLS: \(ratio($hs["mtls-full"].cpu_us_per_handshake; $hs["tls-full"].cpu_us_per_handshake)) |" else empty end),
  (if $hs["mtls-resumed"] then "| resumed mTLS handshake (session ticket, peer verified again) | \($hs["mtls-resumed"].cpu_us_per_handshake) | ÷ full mTLS: \(ratio($hs["mtls-resumed"].cpu_us_per_handshake; $hs["mtls-full"].cpu_us_per_handshake)); ÷ resumed TLS: \(ratio($hs["mtls-resumed"].cpu_us_per_handshake; $hs["tls-resumed"].cpu_us_per_handshake)) |" else empty end),
  (if $hs["tls-resumed"] then "| resumed TLS handshake, plain TLS | \($hs["tls-resumed"].cpu_us_per_handshake) | ÷ full TLS: \(ratio($hs["tls-resumed"].cpu_us_per_handshake; $hs["tls-full"].cpu_us_per_handshake)) |" else empty end),
  (if $h.tls then "| GET over plain TLS, HTTP/1.1 keep-alive (best of \($count)), p99 | \($h.tls.rps) req/s, \($h.tls.p99_ms) ms | baseline 1.000 |" else empty end),
  (if $h.mtls then "| GET over workload mTLS + Middleware (policy check per request), p99 | \($h.mtls.rps) req/s, \($h.mtls.p99_ms) ms | mTLS ÷ TLS: \(ratio($h.mtls.rps; $h.tls.rps)) |" else empty end),
  (if $h["tls-h2"] then "| GET over plain TLS, HTTP/2, p99 | \($h["tls-h2"].rps) req/s, \($h["tls-h2"].p99_ms) ms | baseline 1.000 |" else empty end),
  (if $h["mtls-h2"] then "| GET over workload mTLS + Middleware, HTTP/2, p99 | \($h["mtls-h2"].rps) req/s, \($h["mtls-h2"].p99_ms) ms | mTLS ÷ TLS: \(ratio($h["mtls-h2"].rps; $h["tls-h2"].rps)) |" else empty end),
  "",
  (if ($iss | length) > 0 or $base then
    "## Issuance\n",
    "| run | issuances/s | p50 ms | p99 ms | failed (all rounds) | CA CPU µs/issuance | issuances per CA CPU-second | load CPU µs/req |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ($iss[] | "| POST /v1/svid renewal, round \(.round) | \(.rps) | \(.p50_ms) | \(.p99_ms) | \(.errors) | \(.server_cpu_us_per_req) | \(if .server_cpu_us_per_req > 0 then (1e6 / .server_cpu_us_per_req | round) else "?" end) | \(.client_cpu_us_per_req) |"),
    (if $base then "| in-process ca.IssueCSR, one goroutine (p50/p99 in µs: \($base.p50_us) / \($base.p99_us)) | \($base.per_s) | | | \($base.errors) | \($base.cpu_us_per_issue) | \(1e6 / $base.cpu_us_per_issue | round) | |" else empty end),
    ""
   else empty end),
  (if ([$hs[]] | map(select(. != null)) | length) > 0 then
    "## Handshakes (round with the least CPU per handshake, of \($count))\n",
    "| target | CPU µs/handshake (client + server) | wall mean µs | wall p50 µs | wall p99 µs | resumed | failed (all rounds) | version, key exchange |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    (["tls-full", "tls-resumed", "mtls-full", "mtls-resumed"][] as $t | $hs[$t] | select(. != null)
     | "| \($t) | \(.cpu_us_per_handshake) | \(.wall_mean_us) | \(.wall_p50_us) | \(.wall_p99_us) | \(.resumed)/\(.handshakes) | \($all | errs("handshake"; $t)) | \(.version), \(.key_exchange) |"),
    ""
   else empty end),
  (if ([$h[]] | map(select(. != null)) | length) > 0 then
    "## Throughput (best of \($count) rounds by req/s, closed loop)\n",
    "| target | req/s | p50 ms | p99 ms | failed (all rounds) | server CPU µs/req | load CPU µs/req |",
    "|---|---:|---:|---:|---:|---:|---:|",
    (["tls", "mtls", "tls-h2", "mtls-h2"][] as $t | $h[$t] | select(. != null)
     | "| \($t) | \(.rps) | \(.p50_ms) | \(.p99_ms) | \($all | errs("get"; $t)) | \(.server_cpu_us_per_req) | \(.client_cpu_us_per_req) |")
   else empty end)
JQ
	echo
	echo "Every timing shares the 2 cores with the load generator or other processes: compare runs made on the same machine."
	echo "CA CPU per issuance = the CA process's user+system CPU over a run ÷ (requests sent, warm-up included, + the join-token bootstraps); it includes TLS, HTTP, JSON and the verification of the caller's SVID chain (verified once per presented chain, then cached; the dates are checked on every renewal)."
	echo "Handshakes run one at a time over loopback TCP with client and server in one process: CPU per handshake covers both ends, the TCP connection and Go's default key exchange."
	echo
	raw_runs "$RUNS"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "written to bench/results/workload.md"
if ((FAIL)); then
	log "some runs failed (see above)"
	exit 1
fi
