/**
 * Copies of the optimiser's state on the CPU, taken at every read-back of the
 * loop: what a lost device's run resumes from (src/engine/model/optimize.ts),
 * so it loses at most the iterations since. Two ways, by the state's size:
 *
 * - inline (up to {@link INLINE_STAGING_BYTES}): one staging buffer for all
 *   of it, made before the loop; a snapshot's copies ride on the last command
 *   buffer of a batch and its one map is awaited with the batch's losses —
 *   the GPU never waits (a map per tensor cost a device poll each: +35% an
 *   iteration at 256×171);
 * - in pieces (larger states, whose iterations are long): one staging buffer
 *   of that size, filled and read piece by piece right after the batch, the
 *   next iteration submitted once the snapshot is read — a short pause per
 *   batch instead of a copy of the whole state in GPU memory.
 * @module
 */
import { type ImageBuffers, joinBands } from "./image_buffers.ts";
import type { Optimizer, OptimizerState } from "./optimizer.ts";

/** The most staging memory a snapshot takes at once (a larger state is read in pieces). */
export const INLINE_STAGING_BYTES = 64 * 2 ** 20;

/** A snapshot as read: the steps done, and each tensor's bands. */
interface Snapshot {
  steps: number;
  bands: Float32Array[][];
}

/** A band's range of bytes: which state tensor, which band, from where, how much. */
interface Piece {
  tensor: number;
  band: number;
  offset: number;
  size: number;
}

/** Snapshots of an optimiser's state (see the module doc). */
export class StateKeeper {
  #opt: Optimizer;
  #device: GPUDevice;
  #imgs: ImageBuffers[];
  /** One staging buffer (inline: the whole state's size; in pieces: a piece's). */
  #staging: GPUBuffer;
  #stagingBytes: number;
  #pieces: Piece[][];
  #pending: Promise<Snapshot> | null = null;
  /**
   * Two sets of CPU arrays, one per band of each tensor, used in turn: a
   * snapshot is read into the set the newest one is not in (none is made in
   * the loop).
   */
  #sets: Float32Array[][][];
  #newest: Snapshot | null = null;
  /** Whether the whole state has staging buffers of its own (see the module doc). */
  readonly inline: boolean;
  /**
   * The newest snapshot read back, or null before the first; its arrays may
   * be the keeper's own, written again two snapshots later (read it when the
   * loop has stopped).
   */
  get last(): OptimizerState | null {
    const n = this.#newest;
    if (!n) return null;
    const [x, m, v, avg] = n.bands.map((parts, t) => joinBands(this.#imgs[t], parts));
    return { steps: n.steps, x, m, v, avg: avg ?? null };
  }

  /** Makes the staging buffers (before the loop). */
  constructor(opt: Optimizer, maxStaging = INLINE_STAGING_BYTES) {
    this.#opt = opt;
    this.#device = opt.engine.gpu.device;
    this.#imgs = opt.stateBuffers;
    const sizes = this.#imgs.map((img) => img.bands.map((b) => 3 * b.rows * img.w * 4));
    const total = sizes.flat().reduce((a, b) => a + b, 0);
    this.inline = total <= maxStaging;
    this.#pieces = this.inline
      ? [sizes.flatMap((s, t) => s.map((size, band) => ({ tensor: t, band, offset: 0, size })))]
      : cutPieces(sizes, maxStaging);
    this.#stagingBytes = this.inline ? total : maxStaging;
    // Counted (and checked against the memory cap) before it is made.
    opt.engine.ctx.pool.trackExternal(this.#stagingBytes, "state snapshot");
    this.#staging = this.#device.createBuffer({
      size: this.#stagingBytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const set = () =>
      this.#imgs.map((img) => img.bands.map((b) => new Float32Array(3 * b.rows * img.w)));
    this.#sets = [set(), set()];
  }

  /**
   * Waits for the previous inline snapshot's maps (its staging buffers are
   * free again after it); call before recording the next.
   */
  async settle(): Promise<void> {
    if (this.#pending) {
      this.#newest = await this.#pending;
      this.#pending = null;
    }
  }

  /**
   * Inline: records the copies of the state after `steps` steps into `enc`
   * (its last commands); the returned function, called after the submit,
   * starts the maps.
   */
  record(enc: GPUCommandEncoder, steps: number): () => void {
    this.#copyGroup(enc, this.#pieces[0]);
    return () => {
      this.#pending = this.#readGroups(steps, async (read) => {
        await this.#staging.mapAsync(GPUMapMode.READ);
        read(this.#pieces[0]);
      });
    };
  }

  /** In pieces: copies and reads the state after `steps` steps now, piece by piece. */
  async snapshot(steps: number): Promise<void> {
    this.#newest = await this.#readGroups(steps, async (read) => {
      for (const group of this.#pieces) {
        const enc = this.#device.createCommandEncoder();
        this.#copyGroup(enc, group);
        this.#device.queue.submit([enc.finish()]);
        await this.#staging.mapAsync(GPUMapMode.READ, 0, groupBytes(group));
        read(group);
      }
    });
  }

  /** Records the copies of a group of pieces into the staging buffer, one after another. */
  #copyGroup(enc: GPUCommandEncoder, group: Piece[]): void {
    let at = 0;
    for (const p of group) {
      const src = this.#imgs[p.tensor].bands[p.band].buffer;
      enc.copyBufferToBuffer(src, p.offset, this.#staging, at, p.size);
      at += p.size;
    }
  }

  /**
   * The state after `steps` steps from the groups `fill` maps into the
   * staging buffer one by one (calling `read` with each while mapped).
   */
  async #readGroups(
    steps: number,
    fill: (read: (group: Piece[]) => void) => Promise<void>,
  ): Promise<Snapshot> {
    const out = this.#sets.find((set) => set !== this.#newest?.bands)!;
    await fill((group) => {
      const bytes = this.#staging.getMappedRange(0, groupBytes(group));
      let at = 0;
      for (const p of group) {
        out[p.tensor][p.band].set(new Float32Array(bytes, at, p.size / 4), p.offset / 4);
        at += p.size;
      }
      this.#staging.unmap();
    });
    return { steps, bands: out };
  }

  /** Frees the staging buffers (after any pending map). */
  async destroy(): Promise<void> {
    await this.#pending?.catch(() => {});
    this.#staging.destroy();
    this.#opt.engine.ctx.pool.trackExternal(-this.#stagingBytes);
  }
}

/** The bytes a group of pieces fills. */
function groupBytes(group: Piece[]): number {
  return group.reduce((a, p) => a + p.size, 0);
}

/**
 * The bands' bytes (`sizes[tensor][band]`) cut into pieces of at most `max`
 * bytes (multiples of 4), grouped into copies that fill a staging buffer of
 * `max` bytes each.
 */
export function cutPieces(sizes: number[][], max: number): Piece[][] {
  const groups: Piece[][] = [];
  let group: Piece[] = [];
  let used = 0;
  sizes.forEach((bands, tensor) =>
    bands.forEach((size, band) => {
      for (let offset = 0; offset < size;) {
        if (used === max) {
          groups.push(group);
          [group, used] = [[], 0];
        }
        const n = Math.min(size - offset, max - used);
        group.push({ tensor, band, offset, size: n });
        [offset, used] = [offset + n, used + n];
      }
    })
  );
  if (group.length) groups.push(group);
  return groups;
}
