#!/usr/bin/env bash
# Video measured (issue #32, bench/VIDEO.md): runs the frames of CLIP through
# `deno task stylize` in several ways, in alternation (round 1 runs every
# configuration once, then round 2, …, so the load of a shared machine falls
# on all of them alike), timing each whole command, then grades every output
# with bench/video_eval.py.
#
#   bench/video_sweep.sh CLIP OUT ROUNDS STYLE "COMMON FLAGS" NAME="FLAGS" [NAME="FLAGS"...]
#
# A NAME starting with "independent" runs the frames through --batch (each a
# still); any other through --video. Each run writes OUT/NAME.rR/ and
# appends "NAME<TAB>round<TAB>seconds" to OUT/times.tsv; at the end, for each
# round, video_eval.py grades every run of that round against the first
# NAME's (OUT/eval.rR.json) and prints the median time of each NAME.
set -euo pipefail
CLIP=$1 OUT=$2 ROUNDS=$3 STYLE=$4 COMMON=$5
shift 5
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
mkdir -p "$OUT"
: >"$OUT/times.tsv"
for r in $(seq 1 "$ROUNDS"); do
  for cfg in "$@"; do
    name=${cfg%%=*} flags=${cfg#*=}
    dir="$OUT/$name.r$r"
    rm -rf "$dir"
    if [[ $name == independent* ]]; then mode=(--batch "$CLIP"); else mode=(--video "$CLIP"); fi
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # the flags are words
    deno task -q stylize "${mode[@]}" "$STYLE" -o "$dir" $COMMON $flags -q --trace "$OUT/$name.r$r.json"
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    printf '%s\t%s\t%.1f\n' "$name" "$r" "$secs" | tee -a "$OUT/times.tsv"
  done
done
for r in $(seq 1 "$ROUNDS"); do
  dirs=()
  for cfg in "$@"; do dirs+=("$OUT/${cfg%%=*}.r$r"); done
  /usr/bin/python3 bench/video_eval.py "$CLIP" "$STYLE" "${dirs[@]}" --json "$OUT/eval.r$r.json" \
    ${STYLE_SIZE:+--style-size "$STYLE_SIZE"}
done
echo "median seconds per command (each round's in brackets):"
/usr/bin/python3 - "$OUT/times.tsv" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, _, secs = line.split("\t")
    runs.setdefault(name, []).append(float(secs))
for name, t in runs.items():
    print(f"{name}\t{statistics.median(t):.1f}\t({', '.join(f'{s:.1f}' for s in t)})")
PY
