/**
 * Optical-flow wrapper over src/engine/shaders/flow.wgsl: the passes of a
 * coarse-to-fine variational flow (luminance, pyramid, upsampling, motion
 * tensor, smoothing, diffusivity, red-black SOR, commit) and the
 * consistency check of a forward and a backward flow. Each method appends
 * one launch; src/engine/video/flow.ts strings them together. Images are
 * dense [h][w] planes and flows dense [2][h][w] (u, then v), each at the
 * start of its buffer; frames are the network's preprocessed [3][H][W]
 * tensors (views).
 * @module
 */
import source from "../shaders/flow.wgsl" with { type: "text" };
import { grid2d, type Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";
import { MEAN_BGR } from "../image/tensor.ts";

/** Luminance weights (ITU-R BT.601) of B, G and R. */
const LUMA_BGR = [0.114, 0.587, 0.299];

/** The fields of flow.wgsl's Params (unset ones are 0). */
interface Params {
  w: number;
  h: number;
  sw?: number;
  sh?: number;
  aOff?: number;
  aPlane?: number;
  bOff?: number;
  bPlane?: number;
  parity?: number;
  dir?: number;
  alpha?: number;
  omega?: number;
  eps?: number;
  tau?: number;
  k?: [number, number, number, number];
}

/** The launches of flow.wgsl, with their pipelines and parameter buffers made once. */
export class FlowKernels {
  #ctx: OpContext;
  #scope: Scope;
  #uniforms = new Map<string, GPUBuffer>();

  /** @param ctx the op context. @param scope holds the parameter buffers. */
  constructor(ctx: OpContext, scope: Scope) {
    this.#ctx = ctx;
    this.#scope = scope;
  }

  /** One parameter buffer per distinct set of parameters. */
  #params(p: Params): GPUBuffer {
    const buf = new ArrayBuffer(80);
    new Uint32Array(buf).set([
      p.w,
      p.h,
      p.sw ?? 0,
      p.sh ?? 0,
      p.aOff ?? 0,
      p.aPlane ?? 0,
      p.bOff ?? 0,
      p.bPlane ?? 0,
      p.parity ?? 0,
      p.dir ?? 0,
    ]);
    new Float32Array(buf).set([p.alpha ?? 0, p.omega ?? 0, p.eps ?? 0, p.tau ?? 0], 12);
    new Float32Array(buf).set(p.k ?? [0, 0, 0, 0], 16);
    const words = new Uint32Array(buf);
    const key = words.join(",");
    let u = this.#uniforms.get(key);
    if (!u) {
      u = this.#ctx.uniform(this.#scope, words, "flow.params");
      this.#uniforms.set(key, u);
    }
    return u;
  }

  async #dispatch(
    prog: Program,
    label: string,
    entry: string,
    p: Params,
    bindings: Partial<Record<number, GPUBuffer>>,
    columns = p.w,
    constants?: Record<string, number>,
  ): Promise<void> {
    const pipeline = await this.#ctx.pipelines.get({ name: "flow.wgsl", source, entry, constants });
    const list: (GPUBuffer | null)[] = [this.#params(p)];
    for (let b = 1; b <= 13; b++) list.push(bindings[b] ?? null);
    const max = this.#ctx.device.limits.maxComputeWorkgroupsPerDimension;
    const [gy, gz] = grid2d(p.h, max);
    prog.dispatch(label, pipeline, list, [Math.ceil(columns / 64), gy, gz]);
  }

  /** Appends out = the luminance of `frame` (preprocessed [3][h][w]) in 0..1. */
  gray(prog: Program, label: string, frame: View, out: GPUBuffer, h: number, w: number) {
    const k = LUMA_BGR.map((c) => c / 255);
    const bias = LUMA_BGR.reduce((s, c, i) => s + c * MEAN_BGR[i], 0) / 255;
    return this.#dispatch(prog, label, "gray", {
      w,
      h,
      aOff: frame.offset,
      aPlane: frame.plane ?? h * w,
      k: [k[0], k[1], k[2], bias],
    }, { 1: frame.buffer, 5: out });
  }

  /** Appends dst = src (sh×sw) filtered by [1 3 3 1]/8 and decimated: ⌈sh/2⌉×⌈sw/2⌉. */
  down(prog: Program, label: string, src: GPUBuffer, dst: GPUBuffer, sh: number, sw: number) {
    const [h, w] = [Math.ceil(sh / 2), Math.ceil(sw / 2)];
    return this.#dispatch(prog, label, "down", { w, h, sw, sh }, { 3: src, 5: dst });
  }

  /** Appends fine (h×w) = the coarse flow (sh×sw, the next level up) doubled. */
  upsample(
    prog: Program,
    label: string,
    coarse: GPUBuffer,
    fine: GPUBuffer,
    [sh, sw]: [number, number],
    [h, w]: [number, number],
  ) {
    return this.#dispatch(prog, label, "upsample", { w, h, sw, sh }, { 6: coarse, 11: fine });
  }

  /** Appends tensor = the motion tensor [5][h][w] of a and b warped by flow. */
  derive(
    prog: Program,
    label: string,
    o: { a: GPUBuffer; b: GPUBuffer; flow: GPUBuffer; tensor: GPUBuffer; h: number; w: number },
  ) {
    return this.#dispatch(prog, label, "derive", { w: o.w, h: o.h }, {
      3: o.a,
      4: o.b,
      6: o.flow,
      13: o.tensor,
    });
  }

  /** Appends dst = src's 5 planes filtered by [1 4 6 4 1]/16 along x (dir 0) or y (1). */
  blur(
    prog: Program,
    label: string,
    src: GPUBuffer,
    dst: GPUBuffer,
    h: number,
    w: number,
    dir: 0 | 1,
  ) {
    return this.#dispatch(prog, label, "blur", { w, h, dir }, { 9: src, 13: dst });
  }

  /** Appends psi = ε/√(|∇u|² + |∇v|² + ε²) of flow + dflow. */
  diffusivity(
    prog: Program,
    label: string,
    o: { flow: GPUBuffer; dflow: GPUBuffer; psi: GPUBuffer; h: number; w: number; eps: number },
  ) {
    return this.#dispatch(prog, label, "diffusivity", { w: o.w, h: o.h, eps: o.eps }, {
      6: o.flow,
      8: o.dflow,
      5: o.psi,
    });
  }

  /** Appends one half sweep (pixels with (x + y) % 2 = parity) of red-black SOR on dflow. */
  sor(
    prog: Program,
    label: string,
    o: {
      tensor: GPUBuffer;
      psi: GPUBuffer;
      flow: GPUBuffer;
      dflow: GPUBuffer;
      h: number;
      w: number;
      parity: 0 | 1;
      alpha: number;
      omega: number;
    },
  ) {
    const p = { w: o.w, h: o.h, parity: o.parity, alpha: o.alpha, omega: o.omega };
    return this.#dispatch(
      prog,
      label,
      "sor",
      p,
      { 9: o.tensor, 10: o.psi, 6: o.flow, 12: o.dflow },
      Math.ceil(o.w / 2),
    );
  }

  /** Appends flow += dflow, dflow = 0. */
  commit(prog: Program, label: string, flow: GPUBuffer, dflow: GPUBuffer, h: number, w: number) {
    return this.#dispatch(prog, label, "commit", { w, h }, { 11: flow, 12: dflow });
  }

  /**
   * Appends the consistency check of frame `next` (t): `out` [h][w] gets
   * c = 1 where the backward flow (t → t−1) passes every test, 0 where one
   * fails (flow.wgsl's `check`: outside, forward–backward, motion boundary,
   * photometric with threshold `tau` in frame units); with `codes`, the bit
   * set of the failed tests instead (1, 2, 4, 8).
   */
  check(
    prog: Program,
    label: string,
    o: {
      prev: View;
      next: View;
      forward: GPUBuffer;
      backward: GPUBuffer;
      out: GPUBuffer;
      h: number;
      w: number;
      tau: number;
      codes?: boolean;
    },
  ) {
    const hw = o.h * o.w;
    return this.#dispatch(
      prog,
      label,
      "check",
      {
        w: o.w,
        h: o.h,
        aOff: o.prev.offset,
        aPlane: o.prev.plane ?? hw,
        bOff: o.next.offset,
        bPlane: o.next.plane ?? hw,
        tau: o.tau,
      },
      { 1: o.prev.buffer, 2: o.next.buffer, 6: o.forward, 7: o.backward, 5: o.out },
      o.w,
      { CODES: o.codes ? 1 : 0 },
    );
  }
}
