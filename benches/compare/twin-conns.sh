#!/usr/bin/env bash
# Holds N concurrent connections (default 10000) open to one `lightsout twin serve` process on
# loopback, then sends one request on every connection while all are open, and reports how many
# were answered 200 and how long the whole round took.
#
#   benches/compare/twin-conns.sh [N]
#
# Raises the soft fd limit of this shell: the server and the Python client are separate
# processes, each holding N sockets.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10000}"
ulimit -n $((N + 1024))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/targets/twin}"
# A stub twin: the built-in GitHub twin would answer 429 after its 5000-request rate limit.
TWIN_DIR="$(mktemp -d)"
cat > "$TWIN_DIR/twin.yaml" <<'YAML'
name: ping
provenance: {source: "benches/compare/twin-conns.sh"}
routes:
  - {method: GET, path: /ping, response: {status: 200, body: {pong: true}}}
YAML
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "${TWIN_VIA_EXAMPLE:-0}" = 1 ]; then
  cargo build --release -q -p lightsout-twin --example serve
  "$CARGO_TARGET_DIR/release/examples/serve" "$TWIN_DIR" "$PORT" >/dev/null &
else
  cargo build --release -q -p lightsout-cli
  "$CARGO_TARGET_DIR/release/lightsout" twin serve "$TWIN_DIR" --port "$PORT" --no-latency >/dev/null &
fi
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$TWIN_DIR"' EXIT
for _ in $(seq 1 100); do curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/ping" 2>/dev/null && break; sleep 0.1; done
timeout -k 5 300 python3 - "$PORT" "$N" <<'PY'
import asyncio, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
async def main():
    t0 = time.monotonic()
    conns = []
    for i in range(0, n, 500):
        conns += await asyncio.gather(*[asyncio.open_connection("127.0.0.1", port) for _ in range(min(500, n - i))])
    t1 = time.monotonic()
    req = b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    async def one(rw):
        r, w = rw
        w.write(req); await w.drain()
        data = await r.read()
        w.close()
        return data.startswith(b"HTTP/1.1 200")
    ok = sum(await asyncio.gather(*[one(c) for c in conns]))
    t2 = time.monotonic()
    print(f"{n} connections opened and held in {t1-t0:.2f}s; {ok}/{n} answered 200 while all were open; round took {t2-t1:.2f}s")
    sys.exit(0 if ok == n else 1)
asyncio.run(main())
PY
