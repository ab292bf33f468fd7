#!/usr/bin/env bash
# Throughput and tail latency of one stub route served by the Lightsout twin, Mountebank and
# WireMock, measured with wrk on loopback in one run.
#
#   benches/compare/twin.sh [DURATION_S] [CONNECTIONS]
#
# Needs: wrk (apt-get install wrk), node/npm, Java (for WireMock). Peers are installed into
# $PEERS (default /tmp/twinpeers), never into the repo. The route is the same everywhere:
# GET /hello -> 200 application/json {"hello":"world"}.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${1:-10}"
CONNS="${2:-64}"
THREADS=2
PEERS="${PEERS:-/tmp/twinpeers}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
if [ ! -x "$PEERS/node_modules/.bin/mb" ] || [ ! -x "$PEERS/node_modules/.bin/wiremock" ]; then
  mkdir -p "$PEERS" && (cd "$PEERS" && npm init -y >/dev/null && npm install --silent mountebank wiremock)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/targets/twin}"
# The twin is served by the same engine either way: the CLI (`lightsout twin serve DIR`) or,
# with TWIN_VIA_EXAMPLE=1, the crate's `serve` example (fewer crates to build).
if [ "${TWIN_VIA_EXAMPLE:-0}" = 1 ]; then
  cargo build --release -q -p lightsout-twin --example serve
  twin_serve() { "$CARGO_TARGET_DIR/release/examples/serve" "$1" "$2"; }
else
  cargo build --release -q -p lightsout-cli
  twin_serve() { "$CARGO_TARGET_DIR/release/lightsout" twin serve "$1" --port "$2" --no-latency; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }

# --- Lightsout twin ---
mkdir -p "$WORK/twin"
cat > "$WORK/twin/twin.yaml" <<'YAML'
name: stub
provenance: {source: "benches/compare/twin.sh"}
routes:
  - {method: GET, path: /hello, response: {status: 200, body: {hello: world}}}
YAML
P_TWIN=$(free_port)
twin_serve "$WORK/twin" "$P_TWIN" >/dev/null &
PIDS+=($!)

# --- Mountebank ---
P_MB_ADMIN=$(free_port); P_MB=$(free_port)
"$PEERS/node_modules/.bin/mb" --port "$P_MB_ADMIN" --logfile "$WORK/mb.log" --pidfile "$WORK/mb.pid" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_MB_ADMIN/imposters"
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$P_MB_ADMIN/imposters" -H 'content-type: application/json' -d "{
  \"port\": $P_MB, \"protocol\": \"http\", \"recordRequests\": false,
  \"stubs\": [{\"predicates\": [{\"equals\": {\"method\": \"GET\", \"path\": \"/hello\"}}],
               \"responses\": [{\"is\": {\"statusCode\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"{\\\"hello\\\":\\\"world\\\"}\"}}]}]}"

# --- WireMock (standalone jar via npm, the machine's Java) ---
P_WM=$(free_port)
mkdir -p "$WORK/wm/mappings"
cat > "$WORK/wm/mappings/hello.json" <<'JSON'
{"request": {"method": "GET", "url": "/hello"},
 "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{\"hello\":\"world\"}"}}
JSON
"$PEERS/node_modules/.bin/wiremock" --port "$P_WM" --root-dir "$WORK/wm" --disable-banner --no-request-journal --disable-request-logging >/dev/null 2>&1 &
PIDS+=($!)

wait_http "http://127.0.0.1:$P_TWIN/hello"
wait_http "http://127.0.0.1:$P_MB/hello"
wait_http "http://127.0.0.1:$P_WM/hello"

run() { # name port
  # Warm-up (JIT for WireMock, connection pools), then the measured run.
  wrk -t"$THREADS" -c"$CONNS" -d3s "http://127.0.0.1:$2/hello" >/dev/null
  local out rps p99 p50 non2xx
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$2/hello")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '| %-16s | %12s | %9s | %9s | %s |\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
  echo "$1 $rps" >> "$WORK/rps"
}

echo "wrk: ${THREADS} threads, ${CONNS} connections, ${DUR}s per server; $(nproc) cores; $(uname -r)"
echo "| server           | requests/s   | p50       | p99       | non-2xx |"
echo "|------------------|--------------|-----------|-----------|---------|"
run "lightsout twin" "$P_TWIN"
run "mountebank" "$P_MB"
run "wiremock" "$P_WM"
awk '{r[$1]=$2} END {printf "twin/mountebank = %.1fx, twin/wiremock = %.1fx\n", r["lightsout"]/r["mountebank"], r["lightsout"]/r["wiremock"]}' "$WORK/rps"
