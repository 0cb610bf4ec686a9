#!/usr/bin/python3
"""OpenCV's dense optical flows on the pairs bench/flow_epe.ts wrote.

For each pair under DIR (default /tmp/flow-pairs; <size>/<pair>/frame0.png,
frame1.png, flow.f32 = the ground-truth forward flow [2][H][W] float32,
valid.u8 = the pixels it counts), the mean end-point error of the forward
flow of cv2.DISOpticalFlow (presets ULTRAFAST, FAST, MEDIUM) and
cv2.calcOpticalFlowFarneback on the frames' luminance (cv2.COLOR_BGR2GRAY:
BT.601, as src/engine/shaders/flow.wgsl), over the same pixels, and the
time per flow (one direction, one thread, median of 5). Results:
bench/FLOW.md.

    /usr/bin/python3 bench/flow_opencv.py [DIR]
"""
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

FARNEBACK = dict(pyr_scale=0.5, levels=5, winsize=15, iterations=3, poly_n=5,
                 poly_sigma=1.1, flags=0)


def methods():
    out = []
    for name in ("ULTRAFAST", "FAST", "MEDIUM"):
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{name}"))
        out.append((f"DIS {name.lower()}", lambda a, b, d=dis: d.calc(a, b, None)))
    out.append(("Farnebäck", lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)))
    return out


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/flow-pairs")
    cv2.setNumThreads(1)
    print(f"OpenCV {cv2.__version__}, one thread; Farnebäck {FARNEBACK}")
    for size in sorted(root.iterdir(), key=lambda p: int(p.name.split("x")[0])):
        ms = methods()
        print(f"\n{size.name}: EPE (px), and ms per flow in brackets")
        print("| pair | " + " | ".join(n for n, _ in ms) + " |")
        print("| --- " * (len(ms) + 1) + "|")
        pairs = sorted(size.iterdir(), key=lambda p: p.stat().st_mtime)
        for d in pairs:
            meta = json.loads((d / "meta.json").read_text())
            w, h = meta["w"], meta["h"]
            g0 = cv2.cvtColor(cv2.imread(str(d / "frame0.png")), cv2.COLOR_BGR2GRAY)
            g1 = cv2.cvtColor(cv2.imread(str(d / "frame1.png")), cv2.COLOR_BGR2GRAY)
            gt = np.fromfile(d / "flow.f32", dtype="<f4").reshape(2, h, w)
            valid = np.fromfile(d / "valid.u8", dtype=np.uint8).reshape(h, w) > 0
            cells = []
            for _, fn in ms:
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    f = fn(g0, g1)
                    times.append(1000 * (time.perf_counter() - t0))
                e = np.hypot(f[..., 0] - gt[0], f[..., 1] - gt[1])[valid].mean()
                cells.append(f"{e:.3f} ({sorted(times)[2]:.0f})")
            print(f"| {meta['name']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
