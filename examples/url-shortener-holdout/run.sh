#!/bin/sh
# Holdout runner for the factory's CommandEvaluator (`[holdout] command = "sh run.sh"`).
#
# Input (environment, set by the factory): LIGHTSOUT_WORKTREE (the checkout to judge),
# LIGHTSOUT_REQUIREMENTS (space-separated requirement ids), LIGHTSOUT_RESULTS (a directory for raw
# output), LIGHTSOUT_GATE (the run's resolved gate policy; default: gate.toml beside this file).
# Optional: LIGHTSOUT_BIN (the lightsout binary, default `lightsout` on PATH), LIGHTSOUT_TRIALS
# (trials per scenario, default 5; the gate's rules may ask for more), LIGHTSOUT_MAX_TRIALS (a cap
# on every scenario's trials, whatever the gate asks: `lightsout strength` sets it, a mutant needs
# one failure) and LIGHTSOUT_FAIL_FAST (stop at the first failing scenario; `lightsout strength`).
#
# It serves the built-in Slack twin on a free loopback port, runs the scenarios that trace to the
# requested requirements with `lightsout eval` against the service started from the worktree, and
# prints one JSON object on stdout:
#   {"requirements": [{"id": "REQ-1", "trials": 5, "passed": 5}, ...], "gate": "passed"}
# A service that does not start is a failed attempt: every requirement with 0 trials and the
# category "service did not start".
# Scenario text never leaves this directory and LIGHTSOUT_RESULTS: the factory redacts what it tells
# the agent.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# Helper scripts of `I run` steps (helpers/) find the holdout and the build through these.
export LIGHTSOUT_HOLDOUT_DIR="$HERE"
export LIGHTSOUT_WORKTREE
BIN=${LIGHTSOUT_BIN:-lightsout}
WT=${LIGHTSOUT_WORKTREE:?set LIGHTSOUT_WORKTREE to the checkout to evaluate}
RESULTS=${LIGHTSOUT_RESULTS:-$(mktemp -d)}
REQS=${LIGHTSOUT_REQUIREMENTS:-REQ-1 REQ-2 REQ-3 REQ-4 REQ-5}
mkdir -p "$RESULTS"
# One directory per evaluation: the factory runs several at once and shares LIGHTSOUT_RESULTS.
OUT=$(mktemp -d "$RESULTS/${LIGHTSOUT_TASK:-manual}-${LIGHTSOUT_ATTEMPT:-0}-${LIGHTSOUT_STAGE:-run}.XXXXXX")
WORK=$(mktemp -d)
TWIN_PID=
cleanup() {
  if [ -n "$TWIN_PID" ]; then kill "$TWIN_PID" 2>/dev/null || true; wait "$TWIN_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# 1. The scenario files that trace to a requested requirement.
mkdir "$WORK/suite"
python3 - "$HERE" "$WORK/suite" $REQS <<'PY'
import os, re, sys
here, dest, wanted = sys.argv[1], sys.argv[2], set(sys.argv[3:])
for name in sorted(os.listdir(here)):
    if not (name.endswith(".scenario.md") or name.endswith(".feature")):
        continue
    text = open(os.path.join(here, name), encoding="utf-8").read()
    ids = set(re.findall(r"REQ-\d+", " ".join(re.findall(r"(?im)(?:satisfies:?\s*|@satisfies:)([^\n]*)", text))))
    if ids & wanted:
        os.symlink(os.path.join(here, name), os.path.join(dest, name))
PY

# 2. The Slack twin on a free port, with its drift lifecycle from LIGHTSOUT_TWIN_STATE_DIR (the
# factory sets it to the project's .lightsout/twins). --force serves it even when retired: it then
# says so at /__twin/lifecycle and `lightsout eval` stops the scenarios that need it, with the
# reason, instead of this script failing the whole evaluation.
"$BIN" twin serve slack --force --port 0 --no-latency --format json > "$WORK/twin.json" 2> "$OUT/twin.log" &
TWIN_PID=$!
i=0
until [ -s "$WORK/twin.json" ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ] || ! kill -0 "$TWIN_PID" 2>/dev/null; then
    echo "the Slack twin did not start; see $OUT/twin.log" >&2
    exit 2
  fi
  sleep 0.05
done
TWIN_URL=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"].rstrip("/"))' "$WORK/twin.json")

# 3. The holdout suite against the service built in the worktree. The service starts in well under
# a second; a mutant under `lightsout strength` that is not ready within 10 s never will be (it
# answers its probe with 500), and counts as broken (killed) without waiting the full 30 s. The
# unmutated build must pass with the same limit first.
READY_S=30
if [ "${LIGHTSOUT_STAGE:-}" = strength ]; then READY_S=10; fi
set +e
"$BIN" eval --scenarios "$WORK/suite" --requirement "$REQS" \
  --twin "slack=$TWIN_URL" \
  --target "cd '$WT' && SLACK_API_URL=\"\$LIGHTSOUT_TWIN_SLACK_URL/api\" SLACK_TOKEN=xoxb-twin-bot SLACK_CHANNEL=C0GENERAL1 PYTHONDONTWRITEBYTECODE=1 exec python3 app.py --port {port}" \
  --ready-path /healthz --ready-timeout "$READY_S" \
  --trials "${LIGHTSOUT_TRIALS:-5}" \
  ${LIGHTSOUT_MAX_TRIALS:+--max-trials "$LIGHTSOUT_MAX_TRIALS"} \
  ${LIGHTSOUT_FAIL_FAST:+--fail-fast} \
  --gate "${LIGHTSOUT_GATE:-$HERE/gate.toml}" \
  --format json --output "$OUT/holdout-result.json" \
  --junit "$OUT/holdout-junit.xml" > "$OUT/eval.out" 2> "$OUT/eval.err"
rc=$?
set -e
if [ "$rc" -eq 3 ]; then
  # The service never answered its readiness probe: the build's fault, reported per requirement.
  python3 - $REQS <<'PY'
import json, sys
print(json.dumps({"gate": "failed", "requirements": [
    {"id": r, "trials": 0, "passed": 0, "category": "service did not start"} for r in sys.argv[1:]]}))
PY
  exit 0
fi
if [ "$rc" -ge 2 ]; then
  echo "lightsout eval could not run (exit $rc); see $OUT/eval.err" >&2
  exit 2
fi

# 4. Per requirement: trials, passes and the first failure's category (no scenario text).
python3 - "$OUT/holdout-result.json" $REQS <<'PY'
import json, sys
DESCRIBE = {
    "status": "status mismatch", "header": "header mismatch", "json": "JSON value mismatch",
    "body": "body mismatch", "latency": "response slower than allowed",
    "connection": "connection failure", "timeout": "timeout",
    "twin_state": "third-party state mismatch",
    "twin_journal": "expected third-party call not made or unexpected call",
    "twin_unavailable": "third-party twin unavailable",
    "load_latency": "latency under load over the limit",
    "load_errors": "error rate under load over the limit",
    "adversarial": "server error or no response on malformed input",
    "target_down": "service not running", "step_error": "step could not be performed",
}
run = json.load(open(sys.argv[1], encoding="utf-8"))
out = []
for req in sys.argv[2:]:
    trials = passed = 0
    category = None
    for sc in run.get("scenarios", []):
        if req not in sc.get("satisfies", []):
            continue
        for t in sc.get("trials", []):
            trials += 1
            if t.get("passed"):
                passed += 1
            elif category is None:
                c = t.get("failure") or "failed"
                category = DESCRIBE.get(c, c.replace("_", " "))
    row = {"id": req, "trials": trials, "passed": passed}
    if category:
        row["category"] = category
    out.append(row)
print(json.dumps({"requirements": out, "gate": run.get("gate", {}).get("status", "failed")}))
PY
