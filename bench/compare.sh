#!/usr/bin/env bash
# stylize beside PyTorch's one CPU thread, alternating: each round runs
#   deno task bench --json --sizes 192x256 --kernels 0
#   reference.py bench --threads 1 --iters 10 --size 192
#   deno task bench --json --sizes 512x683 --kernels 0
#   reference.py bench --threads 1 --iters 10 --size 512
# (each in a fresh process: stylize's first iteration there compiles that
# size's plans, as a user's first run does), then prints one row per round
# and the medians of the rounds' ratios. `reference.py bench` times only its
# loop (set-up and first iteration left out); stylize's `ms/iter` is its
# pipelined loop without read-back, `with read-back` reads the loss terms
# back every iteration as a run does, and the ratios are taken with the
# latter (what a user pays). This shared machine drifts between minutes: a
# ratio from one calm pair is not a result, the median of the rounds is.
# Usage: bench/compare.sh [rounds]        (default 3)
# Environment: REFERENCE (default ../shared/reference/reference.py),
# PYTHON (default: python3 or /usr/bin/python3, whichever imports torch), STYLIZE_WEIGHTS as for the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
reference=${REFERENCE:-../shared/reference/reference.py}
if [ ! -f "$reference" ]; then
  echo "compare.sh: no reference script at $reference (set REFERENCE)" >&2
  exit 2
fi
# PYTHON, or the first of python3 and the system's /usr/bin/python3 that
# imports torch (a version manager's python3 may come first on PATH without it).
has_torch() { "$1" -c "import torch" >/dev/null 2>&1; }
python=${PYTHON:-}
if [ -z "$python" ]; then
  for p in python3 /usr/bin/python3; do
    if has_torch "$p"; then
      python=$p
      break
    fi
  done
fi
if [ -z "$python" ] || ! has_torch "$python"; then
  echo "compare.sh: no python with torch (tried ${python:-python3 and /usr/bin/python3}; set PYTHON)" >&2
  exit 2
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# A field of the last JSON line on stdin, rounded to 0.1.
json() { "$python" -c "import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'], 1))"; }
pytorch() {
  (cd "$(dirname "$reference")" &&
    "$python" "$(basename "$reference")" bench --threads 1 --iters 10 --size "$1" 2>/dev/null) |
    json ms_per_iter
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
stylize() { deno task bench --json --sizes "$1" --kernels 0 >"$out" 2>/dev/null; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| round (UTC) | stylize 192×256 (with read-back) | PyTorch 192×256 | ratio | stylize 512×683 (with read-back) | PyTorch 512×683 | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
r192=()
r512=()
for r in $(seq 1 "$rounds"); do
  t=$(date -u +%H:%M)
  stylize 192x256
  s192=$(json ms_per_iter <"$out")
  b192=$(json ms_per_iter_readback <"$out")
  p192=$(pytorch 192)
  stylize 512x683
  s512=$(json ms_per_iter <"$out")
  b512=$(json ms_per_iter_readback <"$out")
  p512=$(pytorch 512)
  r192+=("$(div "$b192" "$p192")")
  r512+=("$(div "$b512" "$p512")")
  echo "| $t | $s192 ($b192) | $p192 | ${r192[-1]}× | $s512 ($b512) | $p512 | ${r512[-1]}× |"
done
echo
echo "median ratio: $(median "${r192[@]}")× at 192×256, $(median "${r512[@]}")× at 512×683 ($rounds rounds)"
