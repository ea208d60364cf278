#!/usr/bin/env bash
# Two systems side by side, in short alternating slices: both run at once (2 workers each, idle while
# the other is loaded), and `wrk -t1 -c64` loads each in turn for SECONDS, N times. A slow drift of
# the machine (the noise that moves a whole benchmark round by 10%) then falls on both alike, so a
# difference of 2-3% in requests per CPU-second shows in a few minutes. Keep-alive only ((a)'s load);
# no latency figures: `npm run bench` is the benchmark, this is a probe for one question.
#
#   scripts/bench/slices.sh [--slices N] [--seconds S] SPEC_A SPEC_B
#   SPEC: node:rr | node:none (node:cluster, scripts/bench/apps/cluster-primary.cjs)
#         node:rr|JSON  (the same, with BENCH_WORKER_NODE_ARGS=JSON, e.g. 'node:rr|["--import","file:///x.mjs"]')
#         clusterd:MODE [FLAGS]  (clusterd start ... --balance MODE FLAGS)
# Prints each system's req/s and requests per CPU-second of its master and workers, and B over A.
# Needs wrk, and a built clusterd (npm run build). Ports 18101 and 18102 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

slices=15
seconds=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --slices | --seconds)
      [[ $# -ge 2 ]] || { echo "slices.sh: $1 needs a value" >&2; exit 2; }
      if [[ $1 == --slices ]]; then slices=$2; else seconds=$2; fi
      shift 2
      ;;
    -*) echo "slices.sh: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -ne 2 ]]; then
  echo "usage: scripts/bench/slices.sh [--slices N] [--seconds S] SPEC_A SPEC_B" >&2
  exit 2
fi
if ! [[ $slices =~ ^[0-9]+$ && $slices -ge 1 && $slices -le 200 && $seconds =~ ^[0-9]+$ && $seconds -ge 1 && $seconds -le 60 ]]; then
  echo "slices.sh: --slices is 1 to 200 and --seconds 1 to 60" >&2
  exit 2
fi
for spec in "$1" "$2"; do
  if ! [[ $spec =~ ^node:(rr|none)(\|.+)?$ || $spec =~ ^clusterd:[a-z]+( .*)?$ ]]; then
    echo "slices.sh: a system is node:rr, node:none or clusterd:MODE [FLAGS], got '$spec'" >&2
    exit 2
  fi
done
command -v wrk > /dev/null || { echo "slices.sh: needs wrk on PATH" >&2; exit 2; }

scratch=$(mktemp -d)
masters=()
cleanup() {
  for pid in "${masters[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# wait_port PORT PID LOG: until something answers on PORT; a PID that exits first (a mode clusterd
# does not know, an app that throws) stops the script at once with its log's last line.
wait_port() {
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    if ! kill -0 "$2" 2> /dev/null; then
      echo "slices.sh: the system for port $1 exited before it answered: $(tail -n 1 "$3")" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "slices.sh: nothing answered on port $1 (logs in $scratch)" >&2
  exit 1
}

# start SPEC PORT NAME: prints the master's pid, then the workers'.
start() {
  local spec=$1 port=$2 name=$3
  case $spec in
    node:*)
      local policy=${spec#node:} args='[]'
      if [[ $policy == *'|'* ]]; then args=${policy#*|}; policy=${policy%%|*}; fi
      BENCH_WORKER_NODE_ARGS=$args NODE_CLUSTER_SCHED_POLICY=$policy BENCH_PORT=$port BENCH_WORKERS=2 \
        setsid node scripts/bench/apps/cluster-primary.cjs > "$scratch/$name.log" 2>&1 &
      local master=$!
      wait_port "$port" "$master" "$scratch/$name.log"
      # Both workers listening, not only the first.
      for _ in $(seq 1 100); do [[ $(pgrep -P "$master" | wc -l) -ge 2 ]] && break; sleep 0.1; done
      echo "$master $(pgrep -P "$master" | tr '\n' ' ')"
      ;;
    clusterd:*)
      local rest=${spec#clusterd:} mode extra=()
      mode=${rest%% *}
      if [[ $rest == *' '* ]]; then read -r -a extra <<< "${rest#* }"; fi
      BENCH_PORT=$port setsid node bin/clusterd.js start scripts/bench/apps/server.cjs -i 2 --name "slices-$name-$$" --balance "$mode" "${extra[@]}" \
        > "$scratch/$name.log" 2>&1 &
      wait_port "$port" $! "$scratch/$name.log"
      node bin/clusterd.js status "slices-$name-$$" --json |
        node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(j.masterPid, j.workers.map((w) => w.pid).join(" "))'
      ;;
  esac
}

# CPU ticks (user + system) of the given pids.
ticks() {
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  echo "$total"
}

# (An assignment, so that a start that fails stops the script under set -e.)
line=$(start "$1" 18101 a)
read -r -a pids_a <<< "$line"
masters+=("${pids_a[0]}")
line=$(start "$2" 18102 b)
read -r -a pids_b <<< "$line"
masters+=("${pids_b[0]}")
echo "A: $1 (pids ${pids_a[*]}); B: $2 (pids ${pids_b[*]}); $slices slices of ${seconds} s each"

# Warm-up: one slice each, not counted.
wrk -t1 -c64 -d"${seconds}s" http://127.0.0.1:18101/ > /dev/null
wrk -t1 -c64 -d"${seconds}s" http://127.0.0.1:18102/ > /dev/null

requests_a=0 requests_b=0 ticks_a=0 ticks_b=0
for _ in $(seq 1 "$slices"); do
  before=$(ticks "${pids_a[@]}")
  done_a=$(wrk -t1 -c64 -d"${seconds}s" http://127.0.0.1:18101/ | awk '/requests in/ { print $1 }')
  ticks_a=$((ticks_a + $(ticks "${pids_a[@]}") - before))
  requests_a=$((requests_a + done_a))
  before=$(ticks "${pids_b[@]}")
  done_b=$(wrk -t1 -c64 -d"${seconds}s" http://127.0.0.1:18102/ | awk '/requests in/ { print $1 }')
  ticks_b=$((ticks_b + $(ticks "${pids_b[@]}") - before))
  requests_b=$((requests_b + done_b))
done

hz=$(getconf CLK_TCK)
awk -v ra="$requests_a" -v rb="$requests_b" -v ta="$ticks_a" -v tb="$ticks_b" -v hz="$hz" -v s="$((slices * seconds))" 'BEGIN {
  ea = ra / (ta / hz); eb = rb / (tb / hz)
  printf "A: %d req/s, %d requests per CPU-second\n", ra / s, ea
  printf "B: %d req/s, %d requests per CPU-second\n", rb / s, eb
  printf "B over A: req/s %.3f, requests per CPU-second %.3f\n", rb / ra, eb / ea
}'
