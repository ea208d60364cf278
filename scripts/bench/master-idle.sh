#!/usr/bin/env bash
# What an idle clusterd master costs: starts `clusterd start scripts/bench/apps/server.cjs -i N [FLAGS]`,
# waits until it is ready and 3 s more, then reads the master's CPU time and its voluntary context
# switches (each one a sleep in epoll_wait that something woke: its wake-ups) over SECONDS, with no load.
# Every thread of the master is counted (V8's and libuv's too).
#
#   scripts/bench/master-idle.sh [--seconds S] N [START FLAGS...]
#
# Needs a built clusterd (npm run build). The app listens on 127.0.0.1:18103.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=20
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds)
      [[ $# -ge 2 ]] || { echo "master-idle.sh: --seconds needs a value" >&2; exit 2; }
      seconds=$2
      shift 2
      ;;
    -*) echo "master-idle.sh: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -lt 1 ]]; then
  echo "usage: scripts/bench/master-idle.sh [--seconds S] N [START FLAGS...]" >&2
  exit 2
fi
workers=$1
shift
# At most 64 workers: each is a process, and this box may have 2 cores.
if ! [[ $workers =~ ^[0-9]+$ && $workers -ge 1 && $workers -le 64 && $seconds =~ ^[0-9]+$ && $seconds -ge 1 && $seconds -le 600 ]]; then
  echo "master-idle.sh: N is 1 to 64 workers and --seconds 1 to 600" >&2
  exit 2
fi

log=$(mktemp)
BENCH_PORT=18103 setsid node bin/clusterd.js start scripts/bench/apps/server.cjs -i "$workers" --name "master-idle-$$" --log-format json "$@" > "$log" 2>&1 &
master=$!
cleanup() {
  kill -TERM "$master" 2> /dev/null || true
  wait "$master" 2> /dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q '"event":"ready"' "$log" && break
  if ! kill -0 "$master" 2> /dev/null; then
    echo "master-idle.sh: clusterd exited before it was ready: $(tail -n 1 "$log")" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q '"event":"ready"' "$log" || { echo "master-idle.sh: clusterd not ready after 60 s: $(tail -n 1 "$log")" >&2; exit 1; }
sleep 3

# CPU ticks (user + system, all threads) and voluntary context switches of every thread.
ticks() { awk '{ print $14 + $15 }' "/proc/$master/stat"; }
switches() { cat /proc/"$master"/task/*/status | awk '/^voluntary_ctxt_switches/ { total += $2 } END { print total }'; }
ticks_before=$(ticks)
switches_before=$(switches)
sleep "$seconds"
ticks_after=$(ticks)
switches_after=$(switches)

hz=$(getconf CLK_TCK)
awk -v t="$((ticks_after - ticks_before))" -v w="$((switches_after - switches_before))" -v hz="$hz" -v s="$seconds" -v n="$workers" -v flags="$*" 'BEGIN {
  printf "%d workers%s, idle %d s: master %.1f%% of a core, %.0f wake-ups a second\n", n, flags == "" ? "" : " (" flags ")", s, 100 * t / hz / s, w / s
}'
