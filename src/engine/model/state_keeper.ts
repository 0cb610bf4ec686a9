/**
 * Copies of the optimiser's state on the CPU, taken at every read-back of the
 * loop: what a lost device's run resumes from (src/engine/model/optimize.ts),
 * so it loses at most the iterations since. Staging buffers for every band of
 * the state are made before the loop (counted in the pool's memory); each
 * snapshot's copies ride on the last command buffer of a batch, and its map
 * is awaited with the batch's losses.
 * @module
 */
import { joinBands } from "./image_buffers.ts";
import type { Optimizer, OptimizerState } from "./optimizer.ts";

/** Snapshots of an optimiser's state (see the module doc). */
export class StateKeeper {
  #opt: Optimizer;
  /** Per state tensor, per band: a staging buffer. */
  #staging: GPUBuffer[][];
  #bytes: number;
  #pending: Promise<OptimizerState> | null = null;
  /** The newest snapshot read back, or null before the first. */
  last: OptimizerState | null = null;

  /** Makes the staging buffers (before the loop). */
  constructor(opt: Optimizer) {
    this.#opt = opt;
    const { device } = opt.engine.gpu;
    const pool = opt.engine.ctx.pool;
    const imgs = opt.stateBuffers;
    this.#bytes = imgs.reduce((a, img) => a + img.bands.reduce((s, b) => s + b.buffer.size, 0), 0);
    pool.trackExternal(this.#bytes, "state snapshot");
    this.#staging = imgs.map((img) =>
      img.bands.map((b) =>
        device.createBuffer({
          size: 3 * b.rows * img.w * 4,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        })
      )
    );
  }

  /**
   * Waits for the previous snapshot's map (its staging buffers are free
   * again after it); call before recording the next.
   */
  async settle(): Promise<void> {
    if (this.#pending) {
      this.last = await this.#pending;
      this.#pending = null;
    }
  }

  /** Records the copies of the state after `steps` steps into `enc` (its last commands). */
  record(enc: GPUCommandEncoder, steps: number): () => void {
    const imgs = this.#opt.stateBuffers;
    imgs.forEach((img, k) =>
      img.bands.forEach((b, j) =>
        enc.copyBufferToBuffer(b.buffer, 0, this.#staging[k][j], 0, this.#staging[k][j].size)
      )
    );
    // Called after the submit: starts the maps.
    return () => {
      this.#pending = this.#read(steps);
    };
  }

  async #read(steps: number): Promise<OptimizerState> {
    const imgs = this.#opt.stateBuffers;
    const tensors = [];
    for (const [k, img] of imgs.entries()) {
      const parts = [];
      for (const s of this.#staging[k]) {
        await s.mapAsync(GPUMapMode.READ);
        parts.push(new Float32Array(s.getMappedRange().slice(0)));
        s.unmap();
      }
      tensors.push(joinBands(img, parts));
    }
    const [x, m, v, avg] = tensors;
    return { steps, x, m, v, avg: avg ?? null };
  }

  /** Frees the staging buffers (after any pending map). */
  async destroy(): Promise<void> {
    await this.#pending?.catch(() => {});
    for (const set of this.#staging) for (const s of set) s.destroy();
    this.#opt.engine.ctx.pool.trackExternal(-this.#bytes);
  }
}
