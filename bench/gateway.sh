#!/usr/bin/env bash
# bench/gateway.sh: the gateway's throughput and latency, as ratios against
# baselines run in the same command (see bench/README.md, "Gateway").
#
# Starts bench/gwserver (one process: a trivial upstream, a fake ES256
# issuer, a gateway whose route needs a JWT and an identical anonymous one,
# all on loopback), then with bench/load (another process):
#
#   1. saturation: GET through each target -- upstream direct, gateway
#      no-auth, gateway JWT -- with BENCH_GW_CONCURRENCY workers (closed
#      loop), BENCH_COUNT rounds interleaved (direct, noauth, jwt, direct,
#      ...), keeping the best round of each (noise only ever costs
#      throughput). Goal: JWT >= 0.85 x no-auth. JWT / direct is reported.
#      /mem of gwserver is read midway through the last JWT round.
#   2. half load: the direct upstream, a bare httputil.ReverseProxy (the
#      baseline cost of any Go proxy hop) and the JWT gateway paced at half
#      the JWT gateway's best throughput (open loop, bench/load -rate),
#      BENCH_COUNT rounds interleaved, keeping the lowest p99 of each.
#      Goal: added p99 (gateway p99 - direct p99) <= 1 ms; gateway p99 -
#      bare proxy p99 is reported.
#
# Writes bench/results/gateway.md. Exits non-zero only if a run failed (a
# tool error or any failed request), never because a goal was missed.
#
# Environment (all optional):
#   BENCH_GW_CONCURRENCY  workers/connections          (default 64)
#   BENCH_GW_DURATION     measured time per run        (default 20s)
#   BENCH_GW_WARMUP       unmeasured warm-up per run   (default 2s)
#   BENCH_COUNT           rounds of each phase         (default 3)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCRIPT_NAME=gateway.sh
LOG_TAG=gwbench

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONC=${BENCH_GW_CONCURRENCY:-64}
DURATION=${BENCH_GW_DURATION:-20s}
WARMUP=${BENCH_GW_WARMUP:-2s}
COUNT=${BENCH_COUNT:-3}
CLK_TCK=$(getconf CLK_TCK)
RESULTS="$ROOT/bench/results"
OUT="$RESULTS/gateway.md"

require_tools curl jq awk
require_posint BENCH_COUNT "$COUNT"
require_posint BENCH_GW_CONCURRENCY "$CONC"

# seconds converts a duration of the form 20s, 500ms or 1m to seconds.
seconds() {
	check_duration "$1" 20s
	awk -v n="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[2]}" 'BEGIN { print (u == "ms" ? n / 1000 : (u == "m" ? n * 60 : n)) }'
}
DURATION_S=$(seconds "$DURATION")
WARMUP_S=$(seconds "$WARMUP")
MEM_AT=$(awk -v w="$WARMUP_S" -v d="$DURATION_S" 'BEGIN { print w + d / 2 }')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-gwbench.XXXXXX")
GW_PID=""
MEM_PID=""
FAIL=0

cleanup() {
	if [[ -n "$MEM_PID" ]]; then
		kill "$MEM_PID" 2>/dev/null || true
	fi
	stop_pid "$GW_PID"
	rm -rf "$WORK"
}
set_traps

# ---------------------------------------------------------------- build
cd "$ROOT"
log "building bench/load and bench/gwserver"
go build -o "$WORK/load" ./bench/load
go build -o "$WORK/gwserver" ./bench/gwserver

# ---------------------------------------------------------------- start
"$WORK/gwserver" >"$WORK/addrs.json" 2>"$WORK/gwserver.log" &
GW_PID=$!
for _ in $(seq 1 300); do
	[[ -s "$WORK/addrs.json" ]] && break
	if ! kill -0 "$GW_PID" 2>/dev/null; then
		log "gwserver exited during startup:"
		cat "$WORK/gwserver.log" >&2
		GW_PID=""
		exit 1
	fi
	sleep 0.1
done
[[ -s "$WORK/addrs.json" ]] || { log "gwserver not ready after 30s"; cat "$WORK/gwserver.log" >&2; exit 1; }
UPSTREAM=$(jq -er .upstream "$WORK/addrs.json")
GW_AUTH=$(jq -er .gateway_auth "$WORK/addrs.json")
GW_NOAUTH=$(jq -er .gateway_noauth "$WORK/addrs.json")
GW_BARE=$(jq -er .proxy_bare "$WORK/addrs.json")
TOKEN=$(jq -er .token "$WORK/addrs.json") # throwaway: its key lives only in gwserver
REQ_PATH=$(jq -er .path "$WORK/addrs.json")
log "gwserver pid $GW_PID: upstream $UPSTREAM, gateway (jwt) $GW_AUTH, gateway (no auth) $GW_NOAUTH"

START_LOAD=$(load_avg)
curl -fsS "$UPSTREAM/mem" >"$WORK/mem-idle.json"
RUNS="$WORK/runs.jsonl"
: >"$RUNS"

run_load() { # phase target round [load args...]
	local phase=$1 target=$2 round=$3 url out t0 t1
	shift 3
	local args=(-mode get -c "$CONC" -d "$DURATION" -warmup "$WARMUP")
	case $target in
	direct) url=$UPSTREAM$REQ_PATH ;;
	noauth) url=$GW_NOAUTH$REQ_PATH ;;
	bare) url=$GW_BARE$REQ_PATH ;;
	jwt)
		url=$GW_AUTH$REQ_PATH
		args+=(-token "$TOKEN")
		;;
	esac
	log "$phase round $round/$COUNT: $target $*"
	t0=$(cpu_ticks "$GW_PID")
	if ! out=$("$WORK/load" -url "$url" "${args[@]}" "$@" 2>"$WORK/load.err"); then
		log "load failed ($phase $target round $round):"
		cat "$WORK/load.err" >&2
		FAIL=1
		return 0
	fi
	t1=$(cpu_ticks "$GW_PID")
	[[ -s "$WORK/load.err" ]] && cat "$WORK/load.err" >&2
	jq -c --arg p "$phase" --arg t "$target" --argjson r "$round" --argjson ticks "$((t1 - t0))" --argjson hz "$CLK_TCK" \
		'{phase:$p, target:$t, round:$r} + . + {server_cpu_us_per_req: (if .sent > 0 then ($ticks * 1e6 / $hz / .sent * 10 | round / 10) else 0 end)}' \
		<<<"$out" | tee -a "$RUNS" >&2
	if [[ $(jq -r .errors <<<"$out") != 0 ]]; then
		FAIL=1
	fi
}

# ------------------------------------------------------------ saturation
for r in $(seq 1 "$COUNT"); do
	run_load saturate direct "$r"
	run_load saturate noauth "$r"
	if [[ $r == "$COUNT" ]]; then
		# Memory under load: midway through the last JWT round.
		(sleep "$MEM_AT" && curl -fsS "$UPSTREAM/mem" >"$WORK/mem-load.json") &
		MEM_PID=$!
	fi
	run_load saturate jwt "$r"
done
wait "$MEM_PID" || { log "could not read /mem under load"; FAIL=1; }
MEM_PID=""

# ------------------------------------------------------------- half load
JWT_BEST=$(jq -s '[.[] | select(.phase == "saturate" and .target == "jwt") | .rps] | max // 0' "$RUNS")
RATE=$(awk -v b="$JWT_BEST" 'BEGIN { printf "%d", b / 2 }')
if ((RATE < 1)); then
	log "no JWT throughput to halve; skipping the half-load phase"
	FAIL=1
else
	for r in $(seq 1 "$COUNT"); do
		run_load half direct "$r" -rate "$RATE"
		run_load half bare "$r" -rate "$RATE"
		run_load half jwt "$r" -rate "$RATE"
	done
fi
curl -fsS "$UPSTREAM/mem" >"$WORK/mem-end.json" || echo '{}' >"$WORK/mem-end.json"
kill -0 "$GW_PID" 2>/dev/null || { log "gwserver died"; FAIL=1; }
if [[ -s "$WORK/gwserver.log" ]]; then
	log "gwserver wrote to stderr:"
	head -5 "$WORK/gwserver.log" >&2
fi
[[ -s "$WORK/mem-load.json" ]] || echo '{}' >"$WORK/mem-load.json"

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS"
{
	echo "# Gatehouse gateway benchmark"
	echo
	env_lines "$ROOT" "$START_LOAD"
	echo "- command: BENCH_GW_CONCURRENCY=$CONC BENCH_GW_DURATION=$DURATION BENCH_GW_WARMUP=$WARMUP BENCH_COUNT=$COUNT bash bench/gateway.sh"
	echo "- each run: GET $REQ_PATH, $CONC workers, $WARMUP warm-up, $DURATION measured; gwserver and bench/load are separate processes on the same cores"
	echo
	jq -rs --slurpfile mi "$WORK/mem-idle.json" --slurpfile ml "$WORK/mem-load.json" --slurpfile me "$WORK/mem-end.json" \
		--argjson count "$COUNT" --argjson rate "$RATE" -f /dev/stdin "$RUNS" <<'JQ'
def r(n): (. * pow(10; n) | round) / pow(10; n);
def mib: if . == null or . < 0 then "?" else ((. / 1048576) | r(1) | tostring) + " MiB" end;
def runs(p; t): map(select(.phase == p and .target == t));
def best(t): runs("saturate"; t) | max_by(.rps);
def calm(t): runs("half"; t) | min_by(.p99_ms);
def errs(p; t): runs(p; t) | map(.errors) | add // 0;
def verdict(ok): if ok then "pass" else "MISS" end;
. as $all
| (["direct", "noauth", "jwt"] | map(. as $t | {key: $t, value: ($all | best($t))}) | from_entries) as $b
| {direct: ($all | calm("direct")), bare: ($all | calm("bare")), jwt: ($all | calm("jwt"))} as $h
| {direct: "upstream direct", noauth: "gateway, auth anonymous", jwt: "gateway, JWT (ES256, scope rule, token stripped)",
   bare: "bare httputil.ReverseProxy (baseline: a Go proxy hop)"} as $names
| "## Saturation (best of \($count) rounds, closed loop)\n",
  "| target | rps | p50 ms | p99 ms | failed requests (all rounds) | gwserver CPU µs/req | load CPU µs/req |",
  "|---|---:|---:|---:|---:|---:|---:|",
  (["direct", "noauth", "jwt"][] as $t | $b[$t] as $x
   | if $x == null then "| \($names[$t]) | missing | | | | | |"
     else "| \($names[$t]) | \($x.rps) | \($x.p50_ms) | \($x.p99_ms) | \($all | errs("saturate"; $t)) | \($x.server_cpu_us_per_req) | \($x.client_cpu_us_per_req) |" end),
  "",
  "## Goals\n",
  "| measure | value | goal |",
  "|---|---:|---|",
  (if $b.jwt and $b.noauth and $b.noauth.rps > 0 then ($b.jwt.rps / $b.noauth.rps) as $q
     | "| throughput JWT / no-auth | \($q | r(3)) | ≥ 0.85 \(verdict($q >= 0.85)) |"
   else "| throughput JWT / no-auth | missing | ≥ 0.85 MISS |" end),
  (if $b.jwt and $b.direct and $b.direct.rps > 0 then "| throughput JWT / direct upstream | \($b.jwt.rps / $b.direct.rps | r(3)) | reported |"
   else "| throughput JWT / direct upstream | missing | reported |" end),
  (if $h.jwt and $h.direct then (($h.jwt.p99_ms - $h.direct.p99_ms) | r(3)) as $d
     | "| added p99 at half load (\($rate) req/s, open loop): JWT gateway p99 \($h.jwt.p99_ms) ms − direct p99 \($h.direct.p99_ms) ms | \($d) ms | ≤ 1 ms \(verdict($d <= 1)) |"
   else "| added p99 at half load | missing | ≤ 1 ms MISS |" end),
  (if $h.jwt and $h.bare then (($h.jwt.p99_ms - $h.bare.p99_ms) | r(3)) as $d
     | "| p99 at half load over a bare Go ReverseProxy hop (what the gateway's own work adds): \($h.jwt.p99_ms) ms − \($h.bare.p99_ms) ms | \($d) ms | reported |"
   else "| p99 over a bare ReverseProxy | missing | reported |" end),
  "| memory of gwserver under load (midway through the last JWT round) | RSS \($ml[0].rss_bytes | mib), heap in use \($ml[0].heap_inuse_bytes | mib), Go sys \($ml[0].sys_bytes | mib), \($ml[0].goroutines // "?") goroutines | reported |",
  "| RSS high-water mark (at the end of the run) / idle RSS, heap in use before any load | \($me[0].hwm_bytes | mib) / \($mi[0].rss_bytes | mib), \($mi[0].heap_inuse_bytes | mib) | reported |",
  "",
  "## Half load (lowest p99 of \($count) rounds, \($rate) req/s = half the JWT gateway's best)\n",
  "| target | rps | p50 ms | p99 ms | pacing lag p99 ms | failed requests (all rounds) |",
  "|---|---:|---:|---:|---:|---:|",
  (["direct", "bare", "jwt"][] as $t | $h[$t] as $x
   | if $x == null then "| \($names[$t]) | missing | | | | |"
     else "| \($names[$t]) | \($x.rps) | \($x.p50_ms) | \($x.p99_ms) | \($x.lag_p99_ms // 0) | \($all | errs("half"; $t)) |" end),
  (if [$h.direct, $h.bare, $h.jwt] | any(. != null and (.lag_p99_ms // 0) > 0.5) then
     "\nNote: requests left more than 0.5 ms after they were due (pacing lag): the machine was too busy for the added-p99 verdict to mean much; run again when it is quiet."
   else empty end)
JQ
	echo
	echo "gwserver holds the upstream and both gateways: its CPU per request on a gateway row includes the upstream's."
	echo "The JWT route sees one token, so every request after the first is a verified-token cache hit."
	echo
	echo "<details><summary>raw runs and /mem</summary>"
	echo
	echo '```'
	cat "$RUNS"
	echo "mem idle: $(cat "$WORK/mem-idle.json")"
	echo "mem under load: $(cat "$WORK/mem-load.json")"
	echo "mem at end: $(cat "$WORK/mem-end.json")"
	echo '```'
	echo
	echo "</details>"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "written to bench/results/gateway.md"
if ((FAIL)); then
	log "some runs failed (see above)"
	exit 1
fi
