/**
 * Spatial control (src/engine/loss/guided_style.ts, guide.ts): masks carried
 * down the network, guided Gram matrices, the masked style loss and its
 * gradient, against reference.py's goldens (masked.safetensors) and, at
 * other sizes (odd, soft edges, a region that vanishes), against the CPU
 * reference of tests/reference_net.ts; whole images against tiles; one mask
 * of ones against the plain style loss.
 */
import assert from "node:assert/strict";
import { createEngine } from "../src/deno/stylizer.ts";
import { loadWeights } from "../src/deno/weights_file.ts";
import { guides, guideWeights } from "../src/engine/loss/guide.ts";
import type { Engine, LossSpec, Region, Tensor } from "../src/engine/model/stylizer.ts";
import { layerDims, tapLayerIndex, type TapName } from "../src/engine/model/squeezenet.ts";
import { view } from "../src/engine/ops/context.ts";
import { gram, gramGeometry } from "../src/engine/ops/gram.ts";
import { Program } from "../src/engine/gpu/scheduler.ts";
import {
  randomFloats,
  readFloats,
  readSafetensors,
  relErr,
  relL2,
  runProgram,
  testContext,
} from "./helpers.ts";
import { golden, weightsPath } from "./data.ts";
import * as ref from "./reference_net.ts";

const WEIGHTS = await weightsPath();
const masked = readSafetensors(golden("masked"));
const G = masked.tensors;
const CONFIG = JSON.parse(masked.metadata.config);
const LAYERS: TapName[] = CONFIG.style_layers;
const WEIGHTS_OF_LAYERS: number[] = CONFIG.style_weights;
const MASKS = ["left", "disk"] as const;

const engine = await createEngine({ weights: WEIGHTS, tilesFile: false });

/** A spec with only the masked style term (content and TV weights 0). */
function maskedSpec(_h: number, _w: number, regions: Region[], layers = LAYERS): LossSpec {
  return {
    contentLayer: "conv1",
    contentWeight: 0,
    contentTarget: { shape: [1, 64, 1, 1], data: new Float32Array(64) },
    styleLayers: layers,
    styleWeights: layers.map((l) => WEIGHTS_OF_LAYERS[LAYERS.indexOf(l)] ?? 1e-3),
    regions,
    tvWeight: 0,
  };
}

Deno.test("guide: each mask carried to each style layer matches guide/<mask>/<layer> within 1e-6", () => {
  for (const m of MASKS) {
    const mask = G.get(`mask/${m}`)!;
    const [, , h, w] = mask.shape;
    const carried = guides({ h, w, data: Float64Array.from(mask.data) }, tapLayerIndex("fire5"));
    for (const l of LAYERS) {
      const want = G.get(`guide/${m}/${l}`)!;
      const got = carried[tapLayerIndex(l)];
      assert.deepEqual([1, 1, got.h, got.w], want.shape, `${m}/${l}`);
      const e = relL2(got.data, want.data);
      assert.ok(e <= 1e-6, `${m}/${l}: relative L2 ${e}`);
    }
  }
});

Deno.test("gram with pixel weights m²/Σm² is gram_guided/left/<layer> within 1e-5", async () => {
  const x = G.get("x")!;
  const feats = await engine.features({ shape: x.shape, data: x.data }, LAYERS);
  const mask = G.get("mask/left")!;
  const [, , h, w] = mask.shape;
  const carried = guides({ h, w, data: Float64Array.from(mask.data) }, tapLayerIndex("fire5"));
  const { ctx, scope, gpu } = await testContext();
  for (const l of LAYERS) {
    const f = feats[l]!;
    const [, c, fh, fw] = f.shape;
    const npix = fh * fw;
    const prog = new Program(gpu.device);
    const fb = ctx.upload(scope, new Float32Array(f.data), `${l}.f`, false);
    const wb = ctx.upload(
      scope,
      Float32Array.from(guideWeights(carried[tapLayerIndex(l)])!),
      `${l}.w`,
      false,
    );
    const gb = scope.floats(c * c, `${l}.g`);
    await gram(ctx, scope, prog, {
      label: `${l}.guided`,
      c,
      npix,
      f: view(fb),
      weight: view(wb),
      n: c,
      scratch: scope.floats(gramGeometry(ctx, c, npix).scratch, `${l}.scratch`),
      gram: view(gb),
    });
    runProgram(gpu.device, prog);
    const got = await readFloats(gpu.device, gb, 0, c * c);
    const e = relL2(got, G.get(`gram_guided/left/${l}`)!.data);
    assert.ok(e <= 1e-5, `${l}: relative L2 ${e}`);
  }
  scope.dispose();
});

/** The golden's two regions: each mask with its style's Gram targets. */
function goldenRegions(): Region[] {
  return MASKS.map((m) => ({
    mask: G.get(`mask/${m}`)!,
    targets: LAYERS.map((l) => G.get(`gram_target/${m}/${l}`)!),
  }));
}

Deno.test("lossAndGradient with regions: loss/style_masked within 1e-4 and grad/style_masked within 1e-3", async () => {
  const x = G.get("x")!;
  const [, , h, w] = x.shape;
  const r = await engine.lossAndGradient(x, maskedSpec(h, w, goldenRegions()));
  const want = G.get("loss/style_masked")!.data[0];
  assert.ok(relErr(r.terms.style, want) <= 1e-4, `${r.terms.style} vs ${want}`);
  assert.equal(r.terms.content, 0);
  const e = relL2(r.gradient.data, G.get("grad/style_masked")!.data);
  assert.ok(e <= 1e-3, `gradient relative L2 ${e}`);
});

/** A soft vertical edge over an h×w image (values 0..1), a disk, and a band conv1 drops. */
function masks(h: number, w: number): Record<string, Float32Array<ArrayBuffer>> {
  const soft = new Float32Array(h * w);
  const disk = new Float32Array(h * w);
  const dropped = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      soft[y * w + x] = Math.min(1, Math.max(0, (0.6 * w - x) / (0.2 * w)));
      disk[y * w + x] = (y - 0.6 * h) ** 2 + (x - 0.3 * w) ** 2 < (0.25 * h) ** 2 ? 1 : 0;
    }
  }
  // conv1 (3×3, stride 2, no padding) never reads the last row of an even height.
  for (let x = 0; x < w; x++) dropped[(h - 1) * w + x] = 1;
  return { soft, disk, dropped };
}

/** Gram targets of a random "style" at each layer. */
async function targetsFor(e: Engine, seed: number, layers: TapName[]): Promise<Tensor[]> {
  const s = { shape: [1, 3, 61, 47], data: randomFloats(3 * 61 * 47, seed, -110, 130) };
  return await e.tapGrams(s, layers);
}

Deno.test("masked style loss and gradient at 68×91 (soft edge, disk, a region conv1 never reads) match the CPU reference within 1e-4 / 1e-3", async () => {
  const [h, w] = [68, 91];
  const x = { shape: [1, 3, h, w], data: randomFloats(3 * h * w, 21, -110, 130) };
  const m = masks(h, w);
  const layers: TapName[] = ["conv1", "fire2", "fire5"];
  const regions: Region[] = [];
  for (const [k, name] of ["soft", "disk", "dropped"].entries()) {
    regions.push({
      mask: { shape: [1, 1, h, w], data: m[name] },
      targets: await targetsFor(engine, 30 + k, layers),
    });
  }
  const spec = { ...maskedSpec(h, w, regions, layers), styleWeights: [1e-2, 1e-3, 1e-4] };
  const got = await engine.lossAndGradient(x, spec);
  const weights = await loadWeights(WEIGHTS);
  const want = ref.lossAndGrad(ref.toAct(x.shape, x.data), weights, {
    ...spec,
    // (unused: weight 0; the reference reads it anyway)
    contentTarget: new Float64Array(64 * layerDims(h, w)[0].h * layerDims(h, w)[0].w),
    styleTargets: undefined,
    regions: regions.map((r) => ({
      mask: ref.toAct(r.mask.shape, r.mask.data),
      targets: r.targets.map((t) => t.data),
    })),
  }, "max");
  assert.ok(
    relErr(got.terms.style, want.terms.style) <= 1e-4,
    `${got.terms.style} vs ${want.terms.style}`,
  );
  const e = relL2(got.gradient.data, want.grad);
  assert.ok(e <= 1e-3, `gradient relative L2 ${e}`);
  // The region conv1 never reads adds nothing: the same loss without it.
  const two = await engine.lossAndGradient(x, { ...spec, regions: regions.slice(0, 2) });
  assert.ok(
    relErr(two.terms.style, got.terms.style) <= 1e-6,
    `${two.terms.style} vs ${got.terms.style}`,
  );
});

Deno.test("one mask of ones gives the plain style loss and gradient within 1e-5", async () => {
  const [h, w] = [57, 83];
  const x = { shape: [1, 3, h, w], data: randomFloats(3 * h * w, 41, -110, 130) };
  const targets = await targetsFor(engine, 42, LAYERS);
  const ones = { shape: [1, 1, h, w], data: new Float32Array(h * w).fill(1) };
  const masked = await engine.lossAndGradient(x, maskedSpec(h, w, [{ mask: ones, targets }]));
  const { regions: _, ...plainSpec } = maskedSpec(h, w, []);
  const plain = await engine.lossAndGradient(x, { ...plainSpec, styleTargets: targets });
  assert.ok(
    relErr(masked.terms.style, plain.terms.style) <= 1e-5,
    `${masked.terms.style} vs ${plain.terms.style}`,
  );
  const e = relL2(masked.gradient.data, plain.gradient.data);
  assert.ok(e <= 1e-5, `gradient relative L2 ${e}`);
});

Deno.test("split into tiles or rows, the masked loss (with content and TV) and its gradient are the whole image's within 1e-6", async () => {
  const W = 101;
  const split = await createEngine({ weights: WEIGHTS, tilesFile: false, tilePixels: 64 * 64 });
  const rows = await createEngine({ weights: WEIGHTS, tilesFile: false, tilePixels: 101 * 100 });
  try {
    for (const [mode, e, h] of [["tiles", split, 83], ["rows", rows, 131]] as const) {
      const grid = e.gridFor(h, W, tapLayerIndex("fire5"))!;
      assert.ok(grid.tiles.length > 1 && (mode === "rows") === (grid.cols === 1), mode);
      const x = { shape: [1, 3, h, W], data: randomFloats(3 * h * W, 51, -110, 130) };
      const m = masks(h, W);
      const regions: Region[] = [
        {
          mask: { shape: [1, 1, h, W], data: m.soft },
          targets: await targetsFor(engine, 52, LAYERS),
        },
        {
          mask: { shape: [1, 1, h, W], data: m.disk },
          targets: await targetsFor(engine, 53, LAYERS),
        },
      ];
      const content = await engine.features(
        { shape: [1, 3, h, W], data: randomFloats(3 * h * W, 54, -110, 130) },
        ["fire2"],
      );
      const spec: LossSpec = {
        ...maskedSpec(h, W, regions),
        contentLayer: "fire2",
        contentWeight: 2e-5,
        contentTarget: content.fire2!,
        tvWeight: 6e-6,
      };
      const a = await engine.lossAndGradient(x, spec);
      const b = await e.lossAndGradient(x, spec);
      for (const k of ["content", "style", "tv"] as const) {
        const err = relErr(b.terms[k], a.terms[k]);
        assert.ok(err <= 1e-6, `${mode}: ${k} ${b.terms[k]} vs ${a.terms[k]} (${err})`);
      }
      const err = relL2(b.gradient.data, a.gradient.data);
      assert.ok(err <= 1e-6, `${mode}: gradient relative L2 ${err}`);
    }
  } finally {
    split.dispose();
    rows.dispose();
  }
});

Deno.test("regions are checked: a mask of another size, values outside [0, 1], regions with style targets", async () => {
  const [h, w] = [40, 40];
  const x = { shape: [1, 3, h, w], data: randomFloats(3 * h * w, 61, -110, 130) };
  const targets = await targetsFor(engine, 62, LAYERS);
  const mask = (hh: number, ww: number, v = 1) => ({
    shape: [1, 1, hh, ww],
    data: new Float32Array(hh * ww).fill(v),
  });
  await assert.rejects(
    () => engine.lossAndGradient(x, maskedSpec(h, w, [{ mask: mask(40, 41), targets }])),
    /region 1: its mask must be \[1,1,40,40\]/,
  );
  await assert.rejects(
    () => engine.lossAndGradient(x, maskedSpec(h, w, [{ mask: mask(40, 40, 2), targets }])),
    /mask values must lie in \[0, 1\]/,
  );
  await assert.rejects(
    () =>
      engine.lossAndGradient(x, {
        ...maskedSpec(h, w, [{ mask: mask(40, 40), targets }]),
        styleTargets: targets,
      }),
    /not style targets/,
  );
});

globalThis.addEventListener("unload", () => engine.dispose());
