#!/usr/bin/env bash
# Throughput and tail latency of one stub route served by the Lightsout twin, Mountebank and
# WireMock, measured with wrk on loopback in one run, one server at a time.
#
#   benches/compare/twin.sh [DURATION_S] [CONNECTION_COUNTS]
#   benches/compare/twin.sh 15 "16 64"            # the defaults
#
# Needs: wrk (apt-get install wrk), node/npm, Java (for WireMock), taskset (util-linux).
# Peers are installed into $PEERS (default /tmp/twinpeers), never into the repo.
# The route is the same everywhere: GET /hello -> 200 application/json {"hello":"world"}.
#
# Fairness and reliability:
# - Only one server runs at a time: it is started, warmed up, measured at every connection
#   count, then stopped (SIGTERM, then SIGKILL after 5 s) before the next one starts.
# - With 2+ cores the server is pinned to core $SERVER_CPU and wrk to core $WRK_CPU
#   (`taskset -c`), the same way for all three servers; wrk then runs one thread.
# - The twin runs with latency off (its own journal stays on: it is part of the engine);
#   WireMock runs with --no-request-journal and request logging off; Mountebank with
#   recordRequests false and log level warn.
# - Every wait is bounded: readiness polls give up after $READY_S seconds, curl has
#   --max-time, wrk runs under `timeout`. All servers are started in their own process group
#   and the whole group is killed on exit, whatever the exit path.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${1:-15}"
CONN_COUNTS="${2:-16 64}"
WARMUP_S="${WARMUP_S:-8}"
READY_S="${READY_S:-60}"
PEERS="${PEERS:-/tmp/twinpeers}"
WORK="$(mktemp -d)"
PGIDS=()
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"

stop_group() { # pgid: TERM the group, wait up to 5 s, then KILL it
  local g="$1"
  kill -TERM -- "-$g" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 -- "-$g" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$g" 2>/dev/null || true
}
cleanup() {
  for g in "${PGIDS[@]}"; do stop_group "$g"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in wrk curl taskset timeout setsid python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (apt-get install wrk curl util-linux coreutils python3)" >&2; exit 2; }
done
if [ ! -x "$PEERS/node_modules/.bin/mb" ] || ! ls "$PEERS"/node_modules/wiremock/build/wiremock-standalone-*.jar >/dev/null 2>&1; then
  mkdir -p "$PEERS" && (cd "$PEERS" && { [ -f package.json ] || npm init -y >/dev/null; } && timeout 600 npm install --silent mountebank wiremock)
fi
WM_JAR="$(ls "$PEERS"/node_modules/wiremock/build/wiremock-standalone-*.jar | head -1)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/targets/twin}"
# The twin is served by the same engine either way: the crate's `serve` example (default,
# fewer crates to build) or, with TWIN_VIA_CLI=1, `lightsout twin serve DIR`.
# TWIN_SERVE=/path/to/serve uses an already built `serve` example instead.
if [ -n "${TWIN_SERVE:-}" ]; then
  TWIN_CMD=("$TWIN_SERVE" "$WORK/twin")
elif [ "${TWIN_VIA_CLI:-0}" = 1 ]; then
  cargo build --release -q -p lightsout-cli
  TWIN_CMD=("$CARGO_TARGET_DIR/release/lightsout" twin serve "$WORK/twin" --no-latency --port)
else
  cargo build --release -q -p lightsout-twin --example serve
  TWIN_CMD=("$CARGO_TARGET_DIR/release/examples/serve" "$WORK/twin")
fi

# NICE=-10 runs every server and wrk at that nice value (the same for all three): on a shared
# machine it keeps other processes from deciding the tail latency. Off by default.
PRIO=(); [ -n "${NICE:-}" ] && PRIO=(nice -n "$NICE")
if [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU="${SERVER_CPU:-0}"; WRK_CPU="${WRK_CPU:-1}"; THREADS=1
  PIN_SERVER=("${PRIO[@]}" taskset -c "$SERVER_CPU"); PIN_WRK=("${PRIO[@]}" taskset -c "$WRK_CPU")
  PINNING="server on core $SERVER_CPU, wrk on core $WRK_CPU"
else
  THREADS=1; PIN_SERVER=("${PRIO[@]}"); PIN_WRK=("${PRIO[@]}"); PINNING="no pinning (1 core)"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url: poll until it answers 2xx, for at most READY_S seconds
  local deadline=$((SECONDS + READY_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    curl -fsS --max-time 1 -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "not up after ${READY_S}s: $1" >&2
  return 1
}
start() { # log-file cmd...: start in a new session (its own process group), record the pgid
  # The child writes its own pid (= its process group id after setsid) before exec'ing the
  # server, so the group is known whether or not setsid had to fork.
  local log="$1"; shift
  local pidfile="$WORK/pgid.$RANDOM"
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >"$log" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
  [ -s "$pidfile" ] || { echo "could not start: $*" >&2; return 1; }
  CURRENT=$(cat "$pidfile")
  PGIDS+=("$CURRENT")
}
to_ms() { # wrk duration (850.00us, 1.23ms, 2.00s) -> ms
  awk -v d="$1" 'BEGIN { v = d + 0; if (d ~ /us$/) v /= 1000; else if (d ~ /ms$/) v = v; else if (d ~ /m$/) v *= 60000; else if (d ~ /s$/) v *= 1000; printf "%.3f", v }'
}

ROWS=()
measure() { # name url
  # Warm-up at the highest connection count (JIT for WireMock, V8 for Mountebank, pools).
  local top; top=$(tr ' ' '\n' <<<"$CONN_COUNTS" | sort -n | tail -1)
  timeout -k 5 $((WARMUP_S + 30)) "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$top" -d"${WARMUP_S}s" --timeout 2s "$2" >/dev/null
  for c in $CONN_COUNTS; do
    local out rps p50 p99 non2xx errs
    out=$(timeout -k 5 $((DUR + 30)) "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$c" -d"${DUR}s" --timeout 2s --latency "$2")
    echo "$out" > "$WORK/wrk-$1-$c.txt"
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    errs=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' <<<"$out")
    ROWS+=("$(printf '| %-14s | %5s | %12s | %8s | %8s | %7s | %6s |' "$1" "$c" "$rps" "$p50" "$p99" "${non2xx:-0}" "${errs:-0}")")
    echo "$1 $c $rps $p99" >> "$WORK/results"
    echo "  $1 c=$c: $rps req/s, p99 ${p99} ms" >&2
  done
}

# --- Lightsout twin ---
mkdir -p "$WORK/twin"
cat > "$WORK/twin/twin.yaml" <<'YAML'
name: stub
provenance: {source: "benches/compare/twin.sh"}
routes:
  - {method: GET, path: /hello, response: {status: 200, body: {hello: world}}}
YAML
P=$(free_port)
echo "twin: starting on $P" >&2
start "$WORK/twin.log" "${PIN_SERVER[@]}" "${TWIN_CMD[@]}" "$P"
G=$CURRENT
wait_http "http://127.0.0.1:$P/hello"
measure "lightsout twin" "http://127.0.0.1:$P/hello"
stop_group "$G"

# --- Mountebank ---
P_ADMIN=$(free_port); P=$(free_port)
echo "mountebank: starting on $P_ADMIN (imposter $P)" >&2
start "$WORK/mb.out" "${PIN_SERVER[@]}" "$PEERS/node_modules/.bin/mb" --port "$P_ADMIN" --loglevel warn \
  --logfile "$WORK/mb.log" --pidfile "$WORK/mb.pid"
G=$CURRENT
wait_http "http://127.0.0.1:$P_ADMIN/imposters"
curl -fsS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$P_ADMIN/imposters" -H 'content-type: application/json' -d "{
  \"port\": $P, \"protocol\": \"http\", \"recordRequests\": false,
  \"stubs\": [{\"predicates\": [{\"equals\": {\"method\": \"GET\", \"path\": \"/hello\"}}],
               \"responses\": [{\"is\": {\"statusCode\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"{\\\"hello\\\":\\\"world\\\"}\"}}]}]}"
wait_http "http://127.0.0.1:$P/hello"
measure "mountebank" "http://127.0.0.1:$P/hello"
stop_group "$G"

# --- WireMock (the standalone jar npm ships, run by the machine's Java directly) ---
P=$(free_port)
mkdir -p "$WORK/wm/mappings"
cat > "$WORK/wm/mappings/hello.json" <<'JSON'
{"request": {"method": "GET", "url": "/hello"},
 "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{\"hello\":\"world\"}"}}
JSON
echo "wiremock: starting on $P" >&2
start "$WORK/wm.log" "${PIN_SERVER[@]}" java -jar "$WM_JAR" --port "$P" --bind-address 127.0.0.1 \
  --root-dir "$WORK/wm" --disable-banner --no-request-journal --disable-request-logging
G=$CURRENT
wait_http "http://127.0.0.1:$P/hello"
measure "wiremock" "http://127.0.0.1:$P/hello"
stop_group "$G"

echo
echo "wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}'): ${THREADS} thread, ${DUR}s per run after a ${WARMUP_S}s warm-up; $(nproc) cores, ${PINNING}${NICE:+, nice $NICE for servers and wrk}; $(uname -r)"
echo "load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server         | conns |   requests/s | p50 (ms) | p99 (ms) | non-2xx | errors |"
echo "|----------------|------:|-------------:|---------:|---------:|--------:|-------:|"
printf '%s\n' "${ROWS[@]}"
echo
python3 - "$WORK/results" <<'PY'
import sys, collections
rows = [l.rsplit(" ", 3) for l in open(sys.argv[1]).read().splitlines() if l.strip()]
rps = collections.defaultdict(dict); p99 = {}
for name, c, r, p in rows:
    rps[int(c)][name] = float(r)
    if name == "lightsout twin":
        p99[int(c)] = float(p)
for c in sorted(rps):
    t = rps[c].get("lightsout twin"); m = rps[c].get("mountebank"); w = rps[c].get("wiremock")
    if t and m and w:
        print(f"c={c}: twin/mountebank = {t/m:.1f}x (goal >= 10x), twin/wiremock = {t/w:.1f}x (goal >= 2x), "
              f"twin p99 = {p99[c]:.3f} ms (goal < 2 ms)")
PY
