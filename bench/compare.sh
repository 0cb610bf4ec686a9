#!/usr/bin/env bash
# Side by side, from outside: each round measures stylize (`deno task bench`)
# and the PyTorch oracle's own bench (`reference.py bench --threads 1`) as
# tight pairs, one size at a time — stylize at 192×256, PyTorch at 192×256,
# stylize at 512×683, PyTorch at 512×683, each pair within ≈ 10–40 s — since
# this shared machine drifts by up to 1.5× between minutes; then one
# `deno task bench --peer tfjs` for the TensorFlow.js ratio (stylize and
# TF.js on the same adapter, in one process).
# Usage: bench/compare.sh [rounds]        (default 3)
# Environment: REFERENCE (default ../shared/reference/reference.py),
# PYTHON (default python3, with torch), STYLIZE_WEIGHTS as for the bench.
# Prints a Markdown table, one row per round (ms per iteration).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
reference=${REFERENCE:-../shared/reference/reference.py}
python=${PYTHON:-python3}
if [ ! -f "$reference" ]; then
  echo "compare.sh: no reference script at $reference (set REFERENCE)" >&2
  exit 2
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
json() { "$python" -c "import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'], 1))"; }
pytorch() { (cd "$(dirname "$reference")" && "$python" "$(basename "$reference")" bench --threads 1 --size "$1" 2>/dev/null) | json ms_per_iter; }
# One size's stylize median and TF.js ratio from the bench's text output.
field() { awk -v size="$2" -v want="$3" '
  $0 ~ "— " size "," { on = 1; next }
  on && /ms\/iter/ && want == "ms" { print $2; exit }
  on && /faster/ && want == "ratio" { for (i = 1; i <= NF; i++) if ($i ~ /×$/) { print $i; exit } }
  on && /^$/ { on = 0 }' "$1"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
echo "| round (UTC) | stylize 192×256 | TF.js ratio | PyTorch 192×256 | stylize / PyTorch | stylize 512×683 | TF.js ratio | PyTorch 512×683 | stylize / PyTorch |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# stylize's median ms per iteration at one size (no per-kernel pass).
stylize() { deno task bench --sizes "$1" --kernels 0 >"$out" 2>/dev/null; field "$out" "${1/x/×}" ms; }
for r in $(seq 1 "$rounds"); do
  t=$(date -u +%H:%M)
  s192=$(stylize 192x256)
  p192=$(pytorch 192)
  s512=$(stylize 512x683)
  p512=$(pytorch 512)
  deno task bench --peer tfjs --kernels 0 >"$out" 2>/dev/null
  echo "| $t | $s192 | $(field "$out" 192×256 ratio) | $p192 | $(div "$s192" "$p192") |" \
    "$s512 | $(field "$out" 512×683 ratio) | $p512 | $(div "$s512" "$p512") |"
done
