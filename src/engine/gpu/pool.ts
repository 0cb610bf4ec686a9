/**
 * A buffer pool. Buffers are keyed by usage and a size class (the next power
 * of two, or the next multiple of 1/4 of it above 64 KiB), handed out with
 * {@link BufferPool.acquire} and given back with {@link BufferPool.release};
 * a released buffer is handed out again to the next request of its class.
 * Counters let tests and benches prove that a steady state allocates nothing.
 * A memory cap (a budget the user gave, or a fault plan's `oom-above`) makes
 * any allocation past it fail as the device's out of memory does.
 * @module
 */
import { formatBytes, GpuOutOfMemoryError } from "./faults.ts";

/** Counters of a {@link BufferPool}. */
export interface PoolStats {
  /** GPU buffers created since the pool was made. */
  allocations: number;
  /** Requests served with a previously released buffer. */
  reuses: number;
  /** Bytes of all buffers the pool owns (in use or free). */
  bytesHeld: number;
  /** The largest `bytesHeld` + `textureBytes` ever reached. */
  peakBytes: number;
  /** Buffers currently handed out. */
  inUse: number;
  /** Textures made beside the buffers ({@link BufferPool.trackTexture}) since the pool was made. */
  textures: number;
  /** Bytes of those textures not yet destroyed. */
  textureBytes: number;
  /** The largest buffer ever made. */
  largestBufferBytes: number;
  /** Bytes of other GPU objects counted in ({@link BufferPool.trackExternal}): staging buffers. */
  externalBytes: number;
}

/**
 * The largest buffer the pool makes, whatever the adapter allows: WebGPU's
 * default `maxStorageBufferBindingSize` (128 MiB; a pool buffer may be bound
 * whole), so every plan runs within the limits a web page gets by default.
 */
export const MAX_BUFFER_BYTES = 128 * 2 ** 20;

/** A request beyond one of the adapter's limits (buffer size, workgroup count). */
export class GpuLimitError extends RangeError {
  /** @param message names the request and the limit. */
  constructor(message: string) {
    super(message);
    this.name = "GpuLimitError";
  }
}

/** The least of {@link MAX_BUFFER_BYTES} and the device's storage-binding and buffer limits. */
export function defaultMaxBufferBytes(device: GPUDevice): number {
  return Math.min(
    MAX_BUFFER_BYTES,
    device.limits.maxStorageBufferBindingSize,
    device.limits.maxBufferSize,
  );
}

/** Rounds a byte size up to its size class. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.ceil(Math.log2(b));
  if (p <= 65536) return p;
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

/** Hands out GPU buffers by size class and usage, reusing released ones. */
export class BufferPool {
  #device: GPUDevice;
  #free = new Map<string, GPUBuffer[]>();
  #owned = new Set<GPUBuffer>();
  #maxBinding: number;
  #stats: PoolStats = {
    allocations: 0,
    reuses: 0,
    bytesHeld: 0,
    peakBytes: 0,
    inUse: 0,
    textures: 0,
    textureBytes: 0,
    largestBufferBytes: 0,
    externalBytes: 0,
  };
  /** Allocations past this total fail as out of memory. */
  #cap = Infinity;

  /**
   * @param device the device the buffers belong to.
   * @param maxBufferBytes the largest buffer allowed (default {@link defaultMaxBufferBytes}).
   */
  constructor(device: GPUDevice, maxBufferBytes: number = defaultMaxBufferBytes(device)) {
    this.#device = device;
    this.#maxBinding = maxBufferBytes;
  }

  /** The largest buffer this pool makes. */
  get maxBufferBytes(): number {
    return this.#maxBinding;
  }

  /** Throws a {@link GpuLimitError} when a buffer of `bytes` is over {@link maxBufferBytes}. */
  check(bytes: number, label = "pooled"): void {
    if (bytes > this.#maxBinding) {
      throw new GpuLimitError(
        `a ${label} buffer of ${fmtBytes(bytes)} exceeds the limit of ` +
          `${fmtBytes(this.#maxBinding)} per buffer`,
      );
    }
  }

  /**
   * The most bytes of GPU memory the pool's buffers, the tracked textures and
   * external objects may hold together (Infinity: no cap): an allocation past
   * it throws {@link GpuOutOfMemoryError}, as a device out of memory would.
   */
  get cap(): number {
    return this.#cap;
  }

  set cap(bytes: number) {
    this.#cap = bytes;
  }

  /** Bytes held now: buffers, tracked textures and external objects. */
  get heldBytes(): number {
    return this.#stats.bytesHeld + this.#stats.textureBytes + this.#stats.externalBytes;
  }

  /** Throws {@link GpuOutOfMemoryError} when `bytes` more would take the total past the cap. */
  reserve(bytes: number, label = "pooled"): void {
    const total = this.heldBytes + bytes;
    if (total > this.#cap) {
      throw new GpuOutOfMemoryError(
        total,
        `out of memory at ${formatBytes(total)} (a ${label} of ${formatBytes(bytes)} past the ` +
          `${formatBytes(this.#cap)} allowed)`,
      );
    }
  }

  /** A snapshot of the counters. */
  get stats(): PoolStats {
    return { ...this.#stats };
  }

  /**
   * Hands out a buffer of at least `bytes` bytes with `usage`. Its contents are
   * whatever the last user left. Throws a {@link GpuLimitError} naming the limit when the
   * request exceeds the device's buffer limit.
   */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label = "pooled"): GPUBuffer {
    const size = sizeClass(bytes);
    this.check(bytes, label);
    const alloc = Math.min(size, Math.ceil(this.#maxBinding / 4) * 4);
    const key = `${usage}:${alloc}`;
    const list = this.#free.get(key);
    if (list && list.length > 0) {
      this.#stats.inUse++;
      this.#stats.reuses++;
      return list.pop()!;
    }
    this.reserve(alloc, `${label} buffer`);
    const buffer = this.#device.createBuffer({ size: alloc, usage, label });
    this.#owned.add(buffer);
    this.#stats.inUse++;
    this.#stats.allocations++;
    this.#stats.bytesHeld += alloc;
    this.#stats.largestBufferBytes = Math.max(this.#stats.largestBufferBytes, alloc);
    this.#notePeak();
    return buffer;
  }

  /**
   * Counts a texture of `bytes` made for the same plans as the pool's
   * buffers (a negative count when it is destroyed), so the counters cover
   * all the GPU memory the plans hold. Call {@link reserve} before making one.
   */
  trackTexture(bytes: number): void {
    if (bytes > 0) this.#stats.textures++;
    this.#stats.textureBytes += bytes;
    this.#notePeak();
  }

  /**
   * Counts GPU memory made outside the pool (staging buffers for reading
   * back; negative when destroyed), checked against the cap when it grows.
   */
  trackExternal(bytes: number, label = "staging buffer"): void {
    if (bytes > 0) this.reserve(bytes, label);
    this.#stats.externalBytes += bytes;
    this.#notePeak();
  }

  #notePeak(): void {
    this.#stats.peakBytes = Math.max(this.#stats.peakBytes, this.heldBytes);
  }

  /** Gives a buffer back to the pool for reuse. */
  release(buffer: GPUBuffer): void {
    if (!this.#owned.has(buffer)) throw new Error("buffer does not belong to this pool");
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, list = []);
    if (list.includes(buffer)) throw new Error("buffer released twice");
    list.push(buffer);
    this.#stats.inUse--;
  }

  /**
   * Destroys the free buffers (those no scope holds), so memory a disposed
   * plan held is given back to the device rather than kept for reuse.
   */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.#owned.delete(b);
        this.#stats.bytesHeld -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }

  /** Starts measuring the peak again from the bytes held now (e.g. for each size a bench runs). */
  resetPeak(): void {
    this.#stats.peakBytes = this.heldBytes;
  }

  /** Destroys every buffer the pool owns. */
  destroy(): void {
    for (const b of this.#owned) b.destroy();
    this.#owned.clear();
    this.#free.clear();
    this.#stats.bytesHeld = 0;
    this.#stats.inUse = 0;
  }
}

/** Formats a byte count as MiB with one decimal. */
export function fmtBytes(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
