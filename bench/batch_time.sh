#!/usr/bin/env bash
# Batch measured (issue #32, bench/VIDEO.md): the images of IN_DIR through one
# `deno task stylize --batch` against one `deno task stylize` per image, with
# the same flags, in alternation (round r: the batch, then the separate runs;
# the next round the other way round), timing each whole command; and every
# batch output compared with its separate run's, pixel for pixel.
#
#   bench/batch_time.sh IN_DIR OUT ROUNDS STYLE [FLAGS...]
#
# Prints one line per round (batch seconds, separate seconds, ratio) and
# whether every pair of outputs has the same pixels.
set -euo pipefail
IN=$1 OUT=$2 ROUNDS=$3 STYLE=$4
shift 4
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
mkdir -p "$OUT"
now() { date +%s.%N; }
batch() {
  rm -rf "$OUT/batch"
  local s
  s=$(now)
  deno task -q stylize --batch "$IN" "$STYLE" -o "$OUT/batch" -q "$@"
  echo "$(now) - $s" | bc
}
separate() {
  rm -rf "$OUT/separate"
  mkdir -p "$OUT/separate"
  local s f
  s=$(now)
  for f in "$IN"/*; do
    case "${f,,}" in *.png | *.jpg | *.jpeg) ;; *) continue ;; esac
    local name
    name=$(basename "${f%.*}")
    deno task -q stylize "$f" "$STYLE" -o "$OUT/separate/$name.png" -q "$@"
  done
  echo "$(now) - $s" | bc
}
for r in $(seq 1 "$ROUNDS"); do
  if ((r % 2)); then
    b=$(batch "$@")
    s=$(separate "$@")
  else
    s=$(separate "$@")
    b=$(batch "$@")
  fi
  printf 'round %d: batch %.1f s, separate %.1f s, batch/separate %.2f\n' "$r" "$b" "$s" \
    "$(echo "$b / $s" | bc -l)"
done
/usr/bin/python3 - "$OUT/batch" "$OUT/separate" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
a, b = Path(sys.argv[1]), Path(sys.argv[2])
names = sorted(p.name for p in b.iterdir())
same = [np.array_equal(np.asarray(Image.open(a / n)), np.asarray(Image.open(b / n))) for n in names]
print(f"{sum(same)} of {len(names)} batch outputs have their separate run's pixels"
      + ("" if all(same) else f"; differ: {[n for n, s in zip(names, same) if not s]}"))
PY
