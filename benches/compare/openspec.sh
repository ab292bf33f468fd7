#!/usr/bin/env bash
# Side-by-side wall time of `openspec validate --all --strict` (npm @fission-ai/openspec) and
# `lightsout spec check --strict` on the same OpenSpec corpus, plus where the two disagree.
#
# Usage: benches/compare/openspec.sh [RUNS]
# Needs: node + npm, hyperfine (apt-get install hyperfine), jq, a Rust toolchain.
# OpenSpec is installed into a temp dir (never into the repo); its telemetry is turned off.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUNS=${1:-10}
WORK=$(mktemp -d /tmp/lightsout-openspec-compare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OPENSPEC_TELEMETRY=0 NO_COLOR=1

# 1. The peer, pinned in a throwaway npm prefix.
(cd "$WORK" && npm init -y >/dev/null && npm install --silent @fission-ai/openspec >/dev/null)
OPENSPEC="$WORK/node_modules/.bin/openspec"
echo "openspec $("$OPENSPEC" --version)"

# 2. Lightsout, release build (or LIGHTSOUT=/path/to/lightsout to use a prebuilt binary).
if [ -z "${LIGHTSOUT:-}" ]; then
  cargo build --release -q -p lightsout-cli
  LIGHTSOUT="${CARGO_TARGET_DIR:-$ROOT/target}/release/lightsout"
fi
"$LIGHTSOUT" --version

# 3. The corpus laid out as an OpenSpec project: <dir>/openspec/{specs,changes}.
PROJ="$WORK/project"
mkdir -p "$PROJ"
cp -r crates/spec/tests/corpus/openspec "$PROJ/openspec"
rm -f "$PROJ/openspec/LICENSE" "$PROJ/openspec/SOURCE.md"
cd "$PROJ"

# 4. Wall time, same machine, same files. Both exit non-zero when they find problems, so
#    hyperfine is told to ignore exit codes.
hyperfine --warmup 2 --runs "$RUNS" -i --export-json "$WORK/times.json" \
  -n openspec "$OPENSPEC validate --all --strict --no-interactive" \
  -n lightsout "$LIGHTSOUT spec check --strict openspec"
jq -r '.results as $r | ($r[0].mean / $r[1].mean) as $x
  | "ratio (openspec mean / lightsout mean): \($x | . * 10 | round / 10)x faster"' "$WORK/times.json"

# 5. Disagreements: per spec id, valid under openspec vs ready under lightsout, and the
#    findings behind each verdict.
"$OPENSPEC" validate --all --strict --json --no-interactive >"$WORK/openspec.json" 2>/dev/null || true
"$LIGHTSOUT" spec check --strict --format json openspec >"$WORK/lightsout.json" || true
echo
echo "verdicts (openspec item → valid; lightsout spec → ready):"
jq -r '.items[] | "openspec  \(.type)/\(.id): valid=\(.valid) issues=\([.issues[] | .level] | group_by(.) | map("\(.[0])×\(length)") | join(","))"' "$WORK/openspec.json"
jq -r '.files[] | "lightsout \(.dialect)/\(.spec_id): ready=\(.readiness.ready) codes=\([.diagnostics[] | .code] | group_by(.) | map("\(.[0])×\(length)") | join(","))"' "$WORK/lightsout.json"
echo
echo "lightsout findings openspec does not report (strict):"
jq -r '.files[] | select(.readiness.ready == false) | .diagnostics[] | "  \(.path):\(.span.line): \(.code) \(.message)"' "$WORK/lightsout.json"
echo
echo "openspec findings (all levels):"
jq -r '.items[] | .id as $id | .issues[] | "  \($id): \(.level) \(.path): \(.message)"' "$WORK/openspec.json"
