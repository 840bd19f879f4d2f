#!/usr/bin/env bash
# bench/run.sh: Gatehouse's performance harness. Builds the binary, measures
# the bare signing cost (go test -bench), then for each backend and signing
# algorithm starts `gatehouse serve` on loopback, seeds two clients through
# the admin API, runs the load generator (client-credentials issuance and
# introspection, repeated), stops the server and cleans up. Prints a markdown
# table and writes it to bench/results/latest.md. See bench/README.md.
#
# Environment (all optional):
#   BENCH_DURATION     measured time per run            (default 20s)
#   BENCH_REPEATS      runs per mode, median taken      (default 3)
#   BENCH_CONCURRENCY  workers/connections              (default 16)
#   BENCH_WARMUP       unmeasured warm-up per run       (default 2s)
#   BENCH_BACKENDS     "sqlite postgres"
#   BENCH_ALGS         "ES256 RS256"
#   BENCH_SIGN_BENCHTIME  -benchtime of the signing benchmarks (default 2s, -count 3)
#   BENCH_PG_DSN       postgres://root@127.0.0.1:5432/test?sslmode=disable
#                      (a schema bench_<random> is created in it and dropped)
#   BENCH_PERF=1       also record a CPU profile of the server (perf, first
#                      repeat of each mode) and write the top functions to
#                      bench/results/profile-<backend>-<alg>-<mode>.txt
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCRIPT_NAME=run.sh
LOG_TAG=bench

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-20s}
REPEATS=${BENCH_REPEATS:-3}
CONC=${BENCH_CONCURRENCY:-16}
WARMUP=${BENCH_WARMUP:-2s}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
ALGS=${BENCH_ALGS:-ES256 RS256}
SIGN_BENCHTIME=${BENCH_SIGN_BENCHTIME:-2s}
PG_DSN=${BENCH_PG_DSN:-postgres://root@127.0.0.1:5432/test?sslmode=disable}
PERF=${BENCH_PERF:-}
CLK_TCK=$(getconf CLK_TCK)
RESULTS="$ROOT/bench/results"

require_tools curl jq openssl sha256sum
require_posint BENCH_REPEATS "$REPEATS"
if [[ -n "$PERF" ]]; then
	command -v perf >/dev/null || { echo "run.sh: BENCH_PERF needs perf" >&2; exit 1; }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
SERVER_PID=""
PG_SCHEMA=""

stop_server() {
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

drop_schema() {
	if [[ -n "$PG_SCHEMA" ]]; then
		psql "$PG_DSN" -q -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 ||
			log "warning: could not drop schema $PG_SCHEMA"
		PG_SCHEMA=""
	fi
}

cleanup() {
	stop_server
	drop_schema
	rm -rf "$WORK"
}
set_traps

# free_port asks the kernel for an unused loopback port.
free_port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

rand_b64() { openssl rand -base64 32; }

# ---------------------------------------------------------------- build
cd "$ROOT"
log "building gatehouse and the load tools"
go build -o "$WORK/gatehouse" ./cmd/gatehouse
go build -o "$WORK/load" ./bench/load
go build -o "$WORK/report" ./bench/report

# ------------------------------------------------- bare signing benchmark
# Run before any server so it has the CPU to itself (as far as a shared
# machine allows).
log "bare signing benchmark (-benchtime $SIGN_BENCHTIME)"
# -count 3: the report keeps the fastest of the three (noise only adds time).
go test -run '^$' -bench 'BenchmarkSign(ES256|RS256)$' -benchtime "$SIGN_BENCHTIME" -count 3 ./internal/keys/ | tee "$WORK/sign.txt" >&2

START_LOAD=$(load_avg)
RUNS="$WORK/runs.jsonl"
: >"$RUNS"

# ---------------------------------------------------------------- servers
start_server() { # backend alg
	local backend=$1 alg=$2 dsn
	IDP_PORT=$(free_port)
	ADMIN_PORT=$(free_port)
	while [[ "$ADMIN_PORT" == "$IDP_PORT" ]]; do ADMIN_PORT=$(free_port); done
	ADMIN_TOKEN="gha_$(openssl rand -hex 32)"
	local token_sha
	token_sha=$(printf %s "$ADMIN_TOKEN" | sha256sum | cut -d' ' -f1)
	case $backend in
	sqlite)
		dsn="file:$WORK/$backend-$alg.db"
		;;
	postgres)
		command -v psql >/dev/null || { log "psql is required for the postgres backend"; return 1; }
		PG_SCHEMA="bench_$(openssl rand -hex 6)"
		psql "$PG_DSN" -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null
		case $PG_DSN in *\?*) dsn="$PG_DSN&search_path=$PG_SCHEMA" ;; *) dsn="$PG_DSN?search_path=$PG_SCHEMA" ;; esac
		;;
	*)
		log "unknown backend $backend"
		return 1
		;;
	esac
	local cfg="$WORK/$backend-$alg.yaml"
	# Secrets go through the environment, not the file.
	cat >"$cfg" <<EOF
issuer: "http://127.0.0.1:$IDP_PORT"
log:
  level: warn
  format: text
storage:
  driver: $backend
admin:
  listen: "127.0.0.1:$ADMIN_PORT"
  token_sha256: "$token_sha"
idp:
  listen: "127.0.0.1:$IDP_PORT"
  signing:
    algorithm: $alg
EOF
	GATEHOUSE_STORAGE_DSN="$dsn" \
		GATEHOUSE_SECRETS_KEY_ENCRYPTION_KEY="$(rand_b64)" \
		GATEHOUSE_SECRETS_PEPPER="$(rand_b64)" \
		"$WORK/gatehouse" serve --config "$cfg" >"$WORK/server-$backend-$alg.log" 2>&1 &
	SERVER_PID=$!
	local i
	for i in $(seq 1 300); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			log "gatehouse exited during startup:"
			cat "$WORK/server-$backend-$alg.log" >&2
			SERVER_PID=""
			return 1
		fi
		if curl -fsS -o /dev/null "http://127.0.0.1:$IDP_PORT/readyz" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "gatehouse not ready after 30s:"
	cat "$WORK/server-$backend-$alg.log" >&2
	return 1
}

create_client() { # json body -> prints client_secret
	local out
	out=$(curl -fsS -X POST "http://127.0.0.1:$ADMIN_PORT/admin/v1/clients" \
		-H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d "$1")
	jq -er .client_secret <<<"$out"
}

# top_functions writes the hottest functions of a perf recording. (awk reads
# all of its input, so no SIGPIPE reaches the pipeline under pipefail.)
top_functions() { # perf.data out.txt
	local keep='!/^#/ && NF { sub(/[ \t-]+$/, ""); if (n++ < max) print }'
	{
		echo "# self time (where the CPU is spent), top 25"
		perf report -i "$1" --no-children --sort symbol --stdio -g none 2>/dev/null | awk -v max=25 "$keep"
		echo
		echo "# including callees (children; which call paths cost the most), top 100"
		perf report -i "$1" --children --sort symbol --stdio -g none 2>/dev/null | awk -v max=100 "$keep"
	} >"$2"
}

run_load() { # backend alg mode repeat
	local backend=$1 alg=$2 mode=$3 repeat=$4 out t0 t1
	local args=(-url "http://127.0.0.1:$IDP_PORT" -mode "$mode" -c "$CONC" -d "$DURATION" -warmup "$WARMUP")
	if [[ $mode == cc ]]; then
		args+=(-client-id bench-service -client-secret "$SVC_SECRET" -scope orders:read)
	else
		args+=(-client-id bench-api -client-secret "$API_SECRET" -cc-id bench-service -cc-secret "$SVC_SECRET" -scope orders:read)
	fi
	t0=$(cpu_ticks "$SERVER_PID")
	if [[ -n "$PERF" && $repeat == 1 ]]; then
		# perf samples the server (-p) for as long as the load tool runs.
		local prof="$WORK/perf-$backend-$alg-$mode.data"
		out=$(perf record -q -F 499 -g -p "$SERVER_PID" -o "$prof" -- "$WORK/load" "${args[@]}")
		mkdir -p "$RESULTS"
		top_functions "$prof" "$RESULTS/profile-$backend-$alg-$mode.txt"
		rm -f "$prof"
		log "profile written to bench/results/profile-$backend-$alg-$mode.txt"
	else
		out=$("$WORK/load" "${args[@]}")
	fi
	t1=$(cpu_ticks "$SERVER_PID")
	jq -c --arg b "$backend" --arg a "$alg" --argjson ticks "$((t1 - t0))" --argjson hz "$CLK_TCK" \
		'{backend:$b, alg:$a} + . + {server_cpu_us_per_req: (if .sent > 0 then ($ticks * 1e6 / $hz / .sent * 10 | round / 10) else 0 end)}' \
		<<<"$out" | tee -a "$RUNS" >&2
}

for backend in $BACKENDS; do
	for alg in $ALGS; do
		log "== $backend $alg: starting gatehouse serve"
		start_server "$backend" "$alg"
		SVC_SECRET=$(create_client '{"id":"bench-service","name":"Bench service","grant_types":["client_credentials"],"scopes":["orders:read"],"audiences":["https://api.bench.example"]}')
		API_SECRET=$(create_client '{"id":"bench-api","name":"Bench resource server","grant_types":["client_credentials"]}')
		for r in $(seq 1 "$REPEATS"); do
			log "$backend $alg run $r/$REPEATS: cc"
			run_load "$backend" "$alg" cc "$r"
			log "$backend $alg run $r/$REPEATS: introspect"
			run_load "$backend" "$alg" introspect "$r"
		done
		if grep -qi 'level=error' "$WORK/server-$backend-$alg.log"; then
			log "server logged errors:"
			grep -i 'level=error' "$WORK/server-$backend-$alg.log" | head -5 >&2
		fi
		stop_server
		drop_schema
	done
done

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS"
{
	echo "# Gatehouse benchmark results"
	echo
	env_lines "$ROOT" "$START_LOAD"
	echo "- command: BENCH_DURATION=$DURATION BENCH_REPEATS=$REPEATS BENCH_CONCURRENCY=$CONC bash bench/run.sh"
	echo "- each run: $CONC workers, $WARMUP warm-up, $DURATION measured; medians of $REPEATS runs${PERF:+ (perf sampling the first repeat)}"
	echo
	"$WORK/report" -runs "$RUNS" -sign "$WORK/sign.txt"
	echo
	raw_runs "$RUNS"
} >"$RESULTS/latest.md.tmp"
mv "$RESULTS/latest.md.tmp" "$RESULTS/latest.md"
cat "$RESULTS/latest.md"
log "written to bench/results/latest.md"
