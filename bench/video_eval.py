#!/usr/bin/python3
"""Video measured (issue #32, bench/VIDEO.md): the temporal error, content
and style losses of stylised frames, graded by programs other than ours.

    /usr/bin/python3 bench/video_eval.py FRAMES STYLE OUT [OUT...] [--json FILE]
        [--style-size N] [--reference PATH]

FRAMES: the input frames (a folder, name order); each OUT a folder of the
output frames of one run, the same names with .png. For each OUT:

- the temporal error: for t > 1, the mean absolute difference (0..255, over
  the three channels) between output frame t and output frame t-1 warped
  onto frame t by the optical flow between INPUT frames t-1 and t, over the
  pixels where the flow's consistency check holds. The flow is OpenCV's
  (DIS, preset MEDIUM, on BT.601 luminance, one thread; forward and
  backward), not ours, so our flow does not grade itself; the check is
  Ruder, Dosovitskiy & Brox's forward-backward test (|w~ + w^|^2 <=
  0.01(|w~|^2 + |w^|^2) + 0.5) and motion-boundary test (|grad u^|^2 +
  |grad v^|^2 <= 0.01|w^|^2 + 0.002), and the sample inside the frame. The
  same flows and masks serve every OUT.
- each frame's content loss against its own input frame, sum (F - P)^2 at
  fire2, and its style loss, sum_l w_l sum (G_l - A_l)^2 with the default
  layers and weights, by the PyTorch oracle (reference.py: features, gram,
  DEFAULT), the style image resized (Pillow bicubic) to --style-size on
  its longer side as stylize does.

Prints a table per OUT (and the ratios of every OUT to the first one, e.g.
the independent frames), with --json writes every number, and with --maps
DIR each OUT's error maps (|frame t - frame t-1 warped| x4, black where the
check fails) as DIR/<OUT's name>/<frame>.png, frames 2 on.
"""
import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent


def load_reference(path):
    spec = importlib.util.spec_from_file_location("reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def frame_names(folder):
    names = [p.name for p in Path(folder).iterdir()
             if p.suffix.lower() in (".png", ".jpg", ".jpeg") and not p.name.startswith(".")]
    key = lambda n: [int(t) if t.isdigit() else t for t in __import__("re").split(r"(\d+)", n)]
    return sorted(names, key=key)


def read_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def flows(prev_rgb, next_rgb):
    """Forward (prev -> next, on prev's pixels) and backward (next -> prev, on next's) flows."""
    g0 = cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(next_rgb, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(g0, g1, None), dis.calc(g1, g0, None)


def remap(img, flow):
    """img sampled at p + flow(p) (bilinear, border replicated), float32."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency(fwd, bwd):
    """Frame t's trusted pixels: forward-backward and motion-boundary tests, inside the frame."""
    h, w = bwd.shape[:2]
    fwd_at = remap(fwd, bwd)  # w~(p) = forward flow at p + w^(p)
    s = fwd_at + bwd
    fb = (s ** 2).sum(-1) <= 0.01 * ((fwd_at ** 2).sum(-1) + (bwd ** 2).sum(-1)) + 0.5
    gu = np.gradient(bwd[..., 0])
    gv = np.gradient(bwd[..., 1])
    mb = (gu[0] ** 2 + gu[1] ** 2 + gv[0] ** 2 + gv[1] ** 2) <= 0.01 * (bwd ** 2).sum(-1) + 0.002
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    tx, ty = gx + bwd[..., 0], gy + bwd[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return fb & mb & inside


def to_tensor(rgb, ref):
    t = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[[2, 1, 0]][None]
    return t - ref.MEAN_BGR


def fit_longer(img, size):
    w, h = img.size
    s = size / max(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)


class Oracle:
    """The reference's content and style losses with its default layers and weights."""

    def __init__(self, ref, style_path, style_size):
        self.ref = ref
        self.w = ref.load_weights()
        self.cfg = ref.DEFAULT
        style = fit_longer(Image.open(style_path).convert("RGB"), style_size)
        with torch.no_grad():
            f = ref.features(to_tensor(np.asarray(style), ref), self.w, "fire5")
            self.targets = [ref.gram(f[l]) for l in self.cfg["style_layers"]]

    def losses(self, out_rgb, content_rgb):
        ref, cfg = self.ref, self.cfg
        if content_rgb.shape != out_rgb.shape:
            h, w = out_rgb.shape[:2]
            content_rgb = np.asarray(Image.fromarray(content_rgb).resize((w, h), Image.BICUBIC))
        with torch.no_grad():
            fo = ref.features(to_tensor(out_rgb, ref), self.w, "fire5")
            fc = ref.features(to_tensor(content_rgb, ref), self.w, "fire2")
            content = float(((fo["fire2"] - fc["fire2"]) ** 2).sum())
            style = float(ref.style_loss(fo, cfg["style_layers"], self.targets,
                                         cfg["style_weights"]))
        return content, style


def evaluate(inputs, names, out_dir, masks, back, oracle, maps=None):
    outs = [read_rgb(Path(out_dir) / (Path(n).stem + ".png")) for n in names]
    h, w = outs[0].shape[:2]
    temporal = []
    for t in range(1, len(names)):
        m = masks[t - 1]
        if m.shape != (h, w):
            raise SystemExit(f"{out_dir}: output frames {w}x{h}, input frames {m.shape[::-1]}")
        warped = remap(outs[t - 1], back[t - 1])
        err = np.abs(outs[t].astype(np.float32) - warped)
        temporal.append(float(err[m].mean()))
        if maps:
            # The error map: the channels' mean absolute difference x4, black where untrusted.
            d = Path(maps) / Path(out_dir).name
            d.mkdir(parents=True, exist_ok=True)
            g = np.clip(4 * err.mean(-1), 0, 255) * m
            Image.fromarray(g.astype(np.uint8)).convert("RGB").save(d / (Path(names[t]).stem + ".png"))
    content, style = zip(*(oracle.losses(o, i) for o, i in zip(outs, inputs)))
    return {"temporal": temporal, "content": list(content), "style": list(style)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("frames")
    ap.add_argument("style")
    ap.add_argument("outs", nargs="+")
    ap.add_argument("--style-size", type=int, default=256)
    ap.add_argument("--reference", default=str(HERE / ".." / ".." / "shared" / "reference"
                                                / "reference.py"))
    ap.add_argument("--json")
    ap.add_argument("--maps", help="write each run's error maps (x4, frames 2 on) under this folder")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    ref = load_reference(a.reference)
    names = frame_names(a.frames)
    # The input frames at the outputs' size (Pillow bicubic, as stylize resizes them).
    oh, ow = read_rgb(Path(a.outs[0]) / (Path(names[0]).stem + ".png")).shape[:2]
    inputs = [np.asarray(Image.open(Path(a.frames) / n).convert("RGB").resize(
        (ow, oh), Image.BICUBIC)) for n in names]
    back, masks = [], []
    for t in range(1, len(names)):
        fwd, bwd = flows(inputs[t - 1], inputs[t])
        back.append(bwd)
        masks.append(consistency(fwd, bwd))
    input_err = [float(np.abs(inputs[t].astype(np.float32) - remap(inputs[t - 1], back[t - 1]))
                       [masks[t - 1]].mean()) for t in range(1, len(names))]
    trusted = float(np.mean([m.mean() for m in masks]))
    print(f"{len(names)} frames; consistency check holds on {100 * trusted:.1f}% of the pixels; "
          f"the input frames' own temporal error {np.mean(input_err):.3f}")
    oracle = Oracle(ref, a.style, a.style_size)
    results = {}
    for out in a.outs:
        results[out] = evaluate(inputs, names, out, masks, back, oracle, a.maps)
    first = results[a.outs[0]]
    print("| run | temporal error | × first | content (mean) | × first (mean, max) "
          "| style (mean) | × first (mean, max) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for out, r in results.items():
        te = np.mean(r["temporal"])
        cr = np.array(r["content"]) / np.array(first["content"])
        sr = np.array(r["style"]) / np.array(first["style"])
        r["summary"] = {"temporal": te, "temporal_ratio": te / np.mean(first["temporal"]),
                        "content_ratio_mean": cr.mean(), "content_ratio_max": cr.max(),
                        "style_ratio_mean": sr.mean(), "style_ratio_max": sr.max()}
        print(f"| {out} | {te:.3f} | {te / np.mean(first['temporal']):.2f} | "
              f"{np.mean(r['content']):.4g} | {cr.mean():.2f}, {cr.max():.2f} | "
              f"{np.mean(r['style']):.4g} | {sr.mean():.2f}, {sr.max():.2f} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"frames": names, "input_temporal": input_err,
                                            "trusted": trusted, "runs": results}, indent=1,
                                           default=float))


if __name__ == "__main__":
    main()
