# shellcheck shell=bash
# bench/lib.sh: shell helpers shared by the benchmark scripts (run.sh,
# gateway.sh, authz.sh, workload.sh). Sourced, never run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The sourcing script sets, before calling any helper:
#   SCRIPT_NAME  name used in argument errors, e.g. "gateway.sh"
#   LOG_TAG      prefix of log lines, e.g. "gwbench"
#
# Functions:
#   log MSG...                 "[LOG_TAG HH:MM:SS] MSG" on stderr
#   require_tools TOOL...      exit 1 unless every TOOL is on PATH
#   require_posint NAME VALUE  exit 1 unless VALUE is a positive integer
#   check_duration D EXAMPLE   exit 1 unless D looks like 20s, 500ms or 1m;
#                              on success BASH_REMATCH[1] is the number and
#                              BASH_REMATCH[2] the unit
#   has PART                   true if PART is a word of $PARTS
#   set_traps                  call `cleanup` (defined by the script) on
#                              exit; exit 130 on INT or TERM
#   stop_pid PID               TERM, wait up to 5s, KILL, reap (no-op if empty)
#   cpu_ticks PID              user+system CPU time of PID in clock ticks
#   load_avg                   the 1, 5 and 15 minute load averages, or "?"
#   env_lines ROOT START_LOAD  report lines: date, commit, go version, CPUs and
#                              load average at start and now
#   raw_runs FILE              a collapsed "raw runs" block holding FILE

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date -u +%H:%M:%S)" "$*" >&2; }

require_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "$SCRIPT_NAME: $tool is required" >&2; exit 1; }
	done
}

require_posint() {
	[[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "$SCRIPT_NAME: $1 must be a positive integer" >&2; exit 1; }
}

check_duration() {
	[[ "$1" =~ ^([0-9]+)(ms|s|m)$ ]] || { echo "$SCRIPT_NAME: duration $1: use e.g. $2, 500ms or 1m" >&2; exit 1; }
}

has() { [[ " $PARTS " == *" $1 "* ]]; }

set_traps() {
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

stop_pid() {
	local pid=$1
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat")
	stat=${stat##*) } # drop "pid (comm) "; fields now start at 3 (state)
	# shellcheck disable=SC2086
	set -- $stat
	echo $((${12} + ${13})) # utime, stime: fields 14 and 15
}

load_avg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }

env_lines() {
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "- commit: $(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$1" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
	echo "- $(go version)"
	echo "- CPUs: $(nproc), load average at start: $2, at end: $(load_avg)"
}

raw_runs() {
	echo "<details><summary>raw runs</summary>"
	echo
	echo '```'
	cat "$1"
	echo '```'
	echo
	echo "</details>"
}
