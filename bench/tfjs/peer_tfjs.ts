/**
 * A peer implementation of one style-transfer iteration in TensorFlow.js on
 * its WebGPU backend, for `deno task bench --peer tfjs`: forward to fire5, the
 * content, style and total-variation losses of the default configuration, the
 * gradient w.r.t. the image, an Adam step and the clamp — the loop of
 * `shared/reference/reference.py` — on the same adapter as ours.
 *
 * It has a configuration of its own (bench/tfjs/deno.json, with its own
 * lockfile), so TensorFlow.js is downloaded only where this peer runs, never
 * by the CLI. `deno task bench --peer tfjs` runs it as a child process
 * (`--size HxW --iters N --weights PATH`: one JSON line of {@link PeerResult}).
 * Run without arguments
 * (`deno run -A --config bench/tfjs/deno.json bench/tfjs/peer_tfjs.ts`) it
 * checks its first loss against the PyTorch oracle in
 * `shared/reference/adam20.safetensors` (the project's `tests/goldens/adam20.safetensors`
 * without shared data) and prints ms/iter at that size and at 192×256.
 * @module
 */
import type { ConvWeights } from "../../src/engine/model/weights.ts";
import * as tf from "@tensorflow/tfjs-core";
// The gradients: tfjs-core's own `dist/register_all_gradients.js` is ESM with
// extensionless imports that Deno cannot load, but the union package's Node
// build inlines them (registering on the same tfjs-core), with the CPU backend.
import "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";

/** What a peer reports. */
export interface PeerResult {
  name: string;
  /** The tfjs backend that ran ("webgpu", or "cpu (webgpu failed: …)"). */
  backend: string;
  /** [height, width] of the image. */
  size: [number, number];
  /** Median wall-clock ms of the timed iterations. */
  msPerIter: number;
  msMin: number;
  msMax: number;
  /** The loss of every iteration, warm-up ones first (losses[0] is the first iteration's). */
  losses: number[];
}

/** One convolution's weights: kernel row-major [kh][kw][cin][cout] (HWIO). */
type PeerConv = Omit<ConvWeights, "name">;

/** A preprocessed BGR image, NCHW [1, 3, H, W]. */
interface PeerImage {
  shape: number[];
  data: Float32Array;
}

/** Options of {@link runTfjsPeer}. */
export interface TfjsPeerOptions {
  weights: Map<string, PeerConv>;
  content: PeerImage;
  style: PeerImage;
  /** Timed iterations. */
  iters: number;
  /** Untimed iterations before them. */
  warmup: number;
}

const MEAN_BGR = [104.006, 116.669, 122.679];
const FIRES = ["fire2", "fire3", "fire4", "fire5"];
const CONTENT_LAYER = "fire2";
const CONTENT_WEIGHT = 2e-5;
const STYLE_LAYERS = ["conv1", "fire3", "fire4", "fire5"];
const STYLE_WEIGHTS = [5e-2, 1.5e-3, 3e-5, 3e-6];
const TV_WEIGHT = 6e-6;
const LR = 10;

type Params = Map<string, { filter: tf.Tensor4D; bias: tf.Tensor1D }>;

let backendPromise: Promise<string> | null = null;

/** Selects the WebGPU backend once; falls back to the CPU backend, saying why. */
function initBackend(): Promise<string> {
  return backendPromise ??= (async () => {
    let why = "";
    try {
      if (await tf.setBackend("webgpu")) {
        await tf.ready();
        return tf.getBackend();
      }
      why = "setBackend returned false";
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    await tf.setBackend("cpu");
    await tf.ready();
    return `${tf.getBackend()} (webgpu failed: ${why})`;
  })();
}

/** NCHW [1,3,H,W] → NHWC [1,H,W,3]. */
function toNhwc(img: PeerImage): tf.Tensor4D {
  const [n, c, h, w] = img.shape;
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(img.data, [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D
  );
}

function conv(
  params: Params,
  name: string,
  x: tf.Tensor4D,
  stride: number,
  pad: "valid" | "same",
): tf.Tensor4D {
  const p = params.get(name);
  if (!p) throw new Error(`missing weights for ${name}`);
  return tf.fused.conv2d({
    x,
    filter: p.filter,
    strides: [stride, stride],
    pad,
    bias: p.bias,
    activation: "relu",
  });
}

/** PyTorch's max_pool2d(3, 2, ceil_mode=True): pad bottom/right with -∞ where ceil adds a window. */
function maxPoolCeil(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  const outSize = (n: number) => {
    let out = Math.ceil((n - 3) / 2) + 1;
    if ((out - 1) * 2 >= n) out -= 1;
    return out;
  };
  const ph = (outSize(h) - 1) * 2 + 3 - h;
  const pw = (outSize(w) - 1) * 2 + 3 - w;
  const padded = ph > 0 || pw > 0
    ? tf.pad(x, [[0, 0], [0, Math.max(0, ph)], [0, Math.max(0, pw)], [0, 0]], -Infinity)
    : x;
  return tf.maxPool(padded, 3, 2, "valid");
}

function fire(params: Params, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const s = conv(params, `${name}/squeeze1x1`, x, 1, "valid");
  return tf.concat(
    [
      conv(params, `${name}/expand1x1`, s, 1, "valid"),
      conv(params, `${name}/expand3x3`, s, 1, "same"),
    ],
    3,
  );
}

/** SqueezeNet 1.1 features up to fire5, NHWC; tap name → post-ReLU activation. */
function features(params: Params, x: tf.Tensor4D): Map<string, tf.Tensor4D> {
  const out = new Map<string, tf.Tensor4D>();
  let y = conv(params, "conv1", x, 2, "valid");
  out.set("conv1", y);
  for (const name of FIRES) {
    if (name === "fire2" || name === "fire4") y = maxPoolCeil(y);
    y = fire(params, name, y);
    out.set(name, y);
  }
  return out;
}

/** F·Fᵀ/(C·H·W) with F [C, H·W]; here F is stored transposed, [H·W, C]. */
function gram(f: tf.Tensor4D): tf.Tensor2D {
  const [, h, w, c] = f.shape;
  const m = tf.reshape(f, [h * w, c]) as tf.Tensor2D;
  return tf.div(tf.matMul(m, m, true, false), c * h * w);
}

function sumSq(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.sum(tf.square(tf.sub(a, b)));
}

function tvLoss(x: tf.Tensor4D): tf.Scalar {
  const [, h, w] = x.shape;
  const dh = sumSq(
    tf.slice(x, [0, 1, 0, 0], [-1, h - 1, -1, -1]),
    tf.slice(x, [0, 0, 0, 0], [-1, h - 1, -1, -1]),
  );
  const dw = sumSq(
    tf.slice(x, [0, 0, 1, 0], [-1, -1, w - 1, -1]),
    tf.slice(x, [0, 0, 0, 0], [-1, -1, w - 1, -1]),
  );
  return tf.mul(tf.add(dh, dw), TV_WEIGHT);
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs `warmup + iters` iterations of the default-configuration loop
 * (init = content) in TensorFlow.js and times the last `iters`, each forced to
 * completion by reading its loss back.
 */
export async function runTfjsPeer(opts: TfjsPeerOptions): Promise<PeerResult> {
  const backend = await initBackend();
  const params: Params = new Map();
  for (const [name, p] of opts.weights) {
    params.set(name, {
      filter: tf.tensor4d(p.kernel, [p.kh, p.kw, p.cin, p.cout]),
      bias: tf.tensor1d(p.bias),
    });
  }
  const content = toNhwc(opts.content);
  const style = toNhwc(opts.style);
  const [contentTarget, ...gramTargets] = tf.tidy(() => {
    const p = features(params, content).get(CONTENT_LAYER)!;
    const sf = features(params, style);
    return [p, ...STYLE_LAYERS.map((l) => gram(sf.get(l)!))];
  });
  const lo = tf.tensor4d(MEAN_BGR.map((m) => -m), [1, 1, 1, 3]);
  const hi = tf.tensor4d(MEAN_BGR.map((m) => 255 - m), [1, 1, 1, 3]);
  const x = tf.variable(content, true, "peer_tfjs_x");
  const optimizer = tf.train.adam(LR, 0.9, 0.999, 1e-8);

  const lossFn = (): tf.Scalar => {
    const img = x as unknown as tf.Tensor4D;
    const f = features(params, img);
    let total = tf.mul(sumSq(f.get(CONTENT_LAYER)!, contentTarget), CONTENT_WEIGHT) as tf.Scalar;
    STYLE_LAYERS.forEach((l, i) => {
      total = tf.add(total, tf.mul(sumSq(gram(f.get(l)!), gramTargets[i]), STYLE_WEIGHTS[i]));
    });
    return tf.add(total, tvLoss(img));
  };

  const losses: number[] = [];
  const times: number[] = [];
  try {
    for (let t = 0; t < opts.warmup + opts.iters; t++) {
      const t0 = performance.now();
      const loss = optimizer.minimize(lossFn, true, [x])!;
      tf.tidy(() => x.assign(tf.maximum(tf.minimum(x, hi), lo)));
      losses.push((await loss.data())[0]);
      loss.dispose();
      if (t >= opts.warmup) times.push(performance.now() - t0);
    }
  } finally {
    optimizer.dispose();
    tf.dispose([x, lo, hi, content, style, contentTarget, ...gramTargets]);
    for (const p of params.values()) tf.dispose([p.filter, p.bias]);
  }
  return {
    name: `tfjs ${tf.version_core}`,
    backend,
    size: [opts.content.shape[2], opts.content.shape[3]],
    msPerIter: times.length ? median(times) : NaN,
    msMin: times.length ? Math.min(...times) : NaN,
    msMax: times.length ? Math.max(...times) : NaN,
    losses,
  };
}

/** The bundled example at h×w, as the bench resizes it. */
async function exampleImage(name: string, h: number, w: number): Promise<PeerImage> {
  const { resize, toTensor } = await import("../../src/engine/image/mod.ts");
  const { readImage } = await import("../../src/deno/image/mod.ts");
  return toTensor(
    resize(await readImage(new URL(`../../examples/${name}`, import.meta.url).pathname), w, h),
  );
}

/** `--size HxW --iters N --weights PATH`: one timed run, printed as one JSON line. */
async function childRun(args: string[]): Promise<void> {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args,
    options: { size: { type: "string" }, iters: { type: "string" }, weights: { type: "string" } },
    strict: true,
  });
  const [h, w] = (values.size ?? "192x256").split("x").map(Number);
  const { loadWeights, resolveWeights } = await import("../../src/deno/weights_file.ts");
  const weights = await loadWeights(await resolveWeights({ path: values.weights }));
  const r = await runTfjsPeer({
    weights,
    content: await exampleImage("chelsea.png", h, w),
    style: await exampleImage("hubble_deep_field.jpg", h, w),
    iters: Number(values.iters ?? 5),
    warmup: 1,
  });
  console.log(JSON.stringify(r));
}

if (import.meta.main && Deno.args.length > 0) {
  await childRun(Deno.args);
} else if (import.meta.main) {
  const { readSafetensors } = await import("../../tests/helpers.ts");
  const { golden, sharedGolden, weightsPath } = await import("../../tests/data.ts");
  const { loadWeights } = await import("../../src/deno/weights_file.ts");
  const weights = await loadWeights(await weightsPath());
  const { tensors } = readSafetensors(sharedGolden("adam20") ?? golden("adam20"));
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`adam20.safetensors has no ${name}`);
    return t;
  };
  const oracle = get("losses").data;
  const r = await runTfjsPeer({
    weights,
    content: get("content"),
    style: get("style"),
    iters: 5,
    warmup: 1,
  });
  const rel = Math.abs(r.losses[0] - oracle[0]) / Math.abs(oracle[0]);
  console.log(`backend: ${r.backend}`);
  console.log(
    `first loss ${r.losses[0].toExponential(8)} vs oracle ${oracle[0].toExponential(8)}: ` +
      `rel diff ${rel.toExponential(2)} ${rel < 0.01 ? "OK" : "FAIL"}`,
  );
  const n = Math.min(r.losses.length, oracle.length);
  const relAll = Array.from({ length: n }, (_, i) => Math.abs(r.losses[i] - oracle[i]) / oracle[i]);
  console.log(`max rel diff over the first ${n} losses: ${Math.max(...relAll).toExponential(2)}`);
  const fmt = (p: PeerResult) =>
    `${p.size[0]}×${p.size[1]}: ${p.msPerIter.toFixed(1)} ms/iter ` +
    `(min ${p.msMin.toFixed(1)}, max ${p.msMax.toFixed(1)})`;
  console.log(fmt(r));

  const r2 = await runTfjsPeer({
    weights,
    content: await exampleImage("chelsea.png", 192, 256),
    style: await exampleImage("hubble_deep_field.jpg", 192, 256),
    iters: 5,
    warmup: 1,
  });
  console.log(fmt(r2));
  console.log(`tf.memory(): ${JSON.stringify(tf.memory())}`);
  if (rel >= 0.01) Deno.exit(1);
}
