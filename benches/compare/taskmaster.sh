#!/usr/bin/env bash
# Side-by-side of task-master's dependency validation (`task-master validate-dependencies`,
# npm task-master-ai) and `lightsout plan` on the same generated 1 000-task tasks.json, plus a
# small broken file (dangling, self and cyclic dependencies) to compare what each one finds.
#
# Usage: benches/compare/taskmaster.sh [TASKS] [RUNS]      (defaults: 1000 tasks, 5 runs)
# Needs: node + npm, python3, GNU time (/usr/bin/time), a Rust toolchain.
# task-master-ai is installed into a temp dir (never into the repo), or taken from
# $TASKMASTER when set (path to its `task-master` bin).
#
# The generator is the recipe of benches/graph.rs (`taskmaster_json`): task i depends on
# i-1, (7i mod (i-1))+1 and (13i mod (i-1))+1, so both tools see the same ~3 000 edges.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
N=${1:-1000}
RUNS=${2:-5}
WORK=$(mktemp -d /tmp/lightsout-taskmaster-compare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export NO_COLOR=1 TASKMASTER_TELEMETRY=false

# 1. The peer.
if [ -z "${TASKMASTER:-}" ]; then
  (cd "$WORK" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund task-master-ai >/dev/null)
  TASKMASTER="$WORK/node_modules/.bin/task-master"
fi
echo "task-master $("$TASKMASTER" --version 2>/dev/null | tail -1)"

# 2. Lightsout, release build.
cargo build --release -q -p lightsout-cli
LIGHTSOUT="${CARGO_TARGET_DIR:-$ROOT/target}/release/lightsout"
"$LIGHTSOUT" --version

# 3. The inputs.
gen() { # gen N DIR [broken]
  mkdir -p "$2"
  python3 - "$1" "$2/tasks.json" "${3:-}" <<'EOF'
import json, sys
n, out, broken = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "broken"
tasks = []
for i in range(1, n + 1):
    deps = sorted({i - 1, (i * 7) % (i - 1) + 1, (i * 13) % (i - 1) + 1}) if i > 1 else []
    tasks.append({"id": i, "title": f"Task {i}", "description": f"Generated task {i}",
                  "details": "", "testStrategy": "", "status": "pending",
                  "dependencies": deps, "priority": "medium", "subtasks": []})
if broken:
    tasks[9]["dependencies"].append(9999)   # dangling
    tasks[19]["dependencies"].append(20)    # self
    tasks[4]["dependencies"].append(8)      # 5 -> 8 -> ... -> 5: a cycle
json.dump({"master": {"tasks": tasks, "metadata": {"description": "bench"}}}, open(out, "w"), indent=2)
EOF
}
gen "$N" "$WORK/valid"
gen 50 "$WORK/broken" broken

ms() { python3 -c "import sys; print(round(float(sys.argv[1])*1000))" "$1"; }
time_one() { # time_one LABEL CMD...  -> prints wall s, user s, max RSS
  local out=$WORK/time.txt
  /usr/bin/time -f "%e %U %M" -o "$out" "${@:2}" >"$WORK/stdout.txt" 2>"$WORK/stderr.txt" || true
  read -r wall user rss <"$out"
  printf '%-44s wall %8s ms  user %8s ms  peak RSS %7s kB\n' "$1" "$(ms "$wall")" "$(ms "$user")" "$rss"
}

echo
echo "== $N tasks, valid file (machine: $(nproc) cores, shared) =="
for r in $(seq 1 "$RUNS"); do
  time_one "lightsout plan --format json (run $r)" "$LIGHTSOUT" plan "$WORK/valid/tasks.json" --format json
done
# task-master's check is slow on large files (superlinear); one run is enough to see it.
(cd "$WORK/valid" && time_one "task-master validate-dependencies (run 1)" "$TASKMASTER" validate-dependencies -f "$WORK/valid/tasks.json")
grep -E "Tasks checked|dependencies verified|valid" "$WORK/stdout.txt" | tr -d '│' | sed 's/^ */  task-master: /' || true

echo
echo "== 50 tasks with a dangling, a self and a cyclic dependency =="
"$LIGHTSOUT" plan "$WORK/broken/tasks.json" >/dev/null 2>"$WORK/ls.txt" || true
echo "lightsout finds: $(grep -oE '^(error|warning)\[LS[0-9]+\]: [^:]*' "$WORK/ls.txt" | sort | uniq -c | tr '\n' ';')"
(cd "$WORK/broken" && "$TASKMASTER" validate-dependencies -f "$WORK/broken/tasks.json" >"$WORK/tm.txt" 2>&1 || true)
echo "task-master finds:"
grep -iE "invalid|circular|self|non-existent|depend" "$WORK/tm.txt" | sed 's/^/  /' | head -20 || true
