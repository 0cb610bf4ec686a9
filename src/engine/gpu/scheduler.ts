/**
 * The dispatch scheduler. A {@link Program} is a list of kernel launches,
 * clears and copies (buffer to buffer or to texture), built once with its bind groups; {@link Program.encode}
 * records it into a command encoder (one compute pass between transfers), so
 * a whole iteration is one submission. With a {@link Profiler}, each launch
 * gets its own pass with timestamp writes (where the adapter has
 * `timestamp-query`).
 * @module
 */
import { GpuLimitError } from "./pool.ts";
import {
  realBuffer,
  realTexture,
  realView,
  type StepUses,
  TransientBuffer,
  TransientView,
} from "./memory.ts";

/** One kernel launch. */
export interface DispatchStep {
  kind: "dispatch";
  /** Name for profiles, e.g. "fire3.expand3x3". */
  label: string;
  pipeline: GPUComputePipeline;
  /** What `@binding(i)` of group 0 gets (transient placeholders included). */
  bindings: Binding[];
  /** The bind group, made at the first encoding (once transients have their backings). */
  bindGroup: GPUBindGroup | null;
  workgroups: [number, number, number];
  /** Floating-point operations this launch does, for GFLOP/s reports. */
  flops: number;
}

/** A buffer cleared to zero. */
export interface ClearStep {
  kind: "clear";
  label: string;
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** A buffer-to-buffer copy. */
export interface CopyStep {
  kind: "copy";
  label: string;
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  size: number;
}

/** A buffer's first `width·height` vec4s copied into a 2D `rgba32float` texture, row by row. */
export interface TextureCopyStep {
  kind: "texture";
  label: string;
  src: GPUBuffer;
  dst: GPUTexture;
  width: number;
  height: number;
}

/** Anything a {@link Program} records. */
export type Step = DispatchStep | ClearStep | CopyStep | TextureCopyStep;

/**
 * A binding: a whole buffer, a range of it, a texture view, or null for a
 * binding the entry point does not use. Buffers and views may be transient
 * placeholders (src/engine/gpu/memory.ts), bound to their backings when the
 * step is first encoded.
 */
export type Binding =
  | GPUBuffer
  | { buffer: GPUBuffer; offset?: number; size?: number }
  | GPUTextureView
  | null;

/** Builds the bind group for group 0 of `pipeline` from `bindings` (binding i = entry i). */
export function bindGroup(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  bindings: Binding[],
  label?: string,
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.flatMap((b, i) => b === null ? [] : [{ binding: i, resource: resource(b) }]),
  });
}

/** A binding as the device takes it: transient placeholders replaced by their backings. */
function resource(b: Exclude<Binding, null>): GPUBindingResource {
  const x = b as unknown;
  if (x instanceof GPUBuffer || x instanceof TransientBuffer) {
    return { buffer: realBuffer(x as GPUBuffer) };
  }
  if (x instanceof TransientView) return realView(x as unknown as GPUTextureView);
  if ("buffer" in b) return { ...b, buffer: realBuffer(b.buffer) };
  return b;
}

/** The buffers, textures and views a binding names. */
function bindingUses(b: Binding): unknown[] {
  if (b === null) return [];
  const x = b as unknown;
  if (x instanceof GPUBuffer || x instanceof TransientBuffer || x instanceof TransientView) {
    return [x];
  }
  return "buffer" in b ? [b.buffer] : [b];
}

/**
 * `groups` workgroups laid out as x × y within `max` per dimension (x as
 * large as it can be): a kernel that numbers its invocations linearly takes
 * gid.x + gid.y · nwg.x · WG, and skips those past its end.
 */
export function grid2d(groups: number, max: number): [number, number] {
  const x = Math.max(1, Math.min(groups, max));
  return [x, Math.ceil(groups / x)];
}

/** A recorded sequence of GPU work, encoded again each time it runs. */
export class Program {
  /** The steps, in order. */
  readonly steps: Step[] = [];
  #device: GPUDevice;

  /** @param device the device whose pipelines and buffers the steps use. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Appends a kernel launch; `bindings[i]` goes to `@binding(i)` of group 0. */
  dispatch(
    label: string,
    pipeline: GPUComputePipeline,
    bindings: Binding[],
    workgroups: [number, number?, number?],
    flops = 0,
  ): void {
    const [x, y = 1, z = 1] = workgroups;
    const max = this.#device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new GpuLimitError(`${label}: ${x}×${y}×${z} workgroups exceed the adapter's ${max}`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    this.steps.push({
      kind: "dispatch",
      label,
      pipeline,
      bindings,
      bindGroup: null,
      workgroups: [x, y, z],
      flops,
    });
  }

  /** Appends a clear to zero of `size` bytes at `offset` (default: all of it). */
  clear(label: string, buffer: GPUBuffer, offset = 0, size = buffer.size - offset): void {
    this.steps.push({ kind: "clear", label, buffer, offset, size });
  }

  /** Appends a copy between buffers. */
  copy(
    label: string,
    src: GPUBuffer,
    srcOffset: number,
    dst: GPUBuffer,
    dstOffset: number,
    size: number,
  ): void {
    this.steps.push({ kind: "copy", label, src, srcOffset, dst, dstOffset, size });
  }

  /**
   * Appends a copy of `src`'s first `width·height` vec4s into `dst` (an
   * `rgba32float` texture of that size, `width` a multiple of 16): vec4 t
   * goes to texel (t mod width, ⌊t / width⌋).
   */
  copyToTexture(label: string, src: GPUBuffer, dst: GPUTexture): void {
    const { width, height } = dst;
    if (width % 16 || src.size < width * height * 16) {
      throw new RangeError(
        `${label}: the texture must be a multiple of 16 wide, the buffer hold it`,
      );
    }
    this.steps.push({ kind: "texture", label, src, dst, width, height });
  }

  /**
   * What each step uses, in order (buffers, textures and views, transient
   * placeholders included): what a memory plan ({@link planMemory} in
   * memory.ts) reads the transients' lifetimes from.
   */
  uses(): StepUses[] {
    return this.steps.map((s) => {
      switch (s.kind) {
        case "dispatch":
          return s.bindings.flatMap(bindingUses);
        case "clear":
          return [s.buffer];
        case "copy":
          return [s.src, s.dst];
        case "texture":
          return [s.src, s.dst];
      }
    });
  }

  /**
   * Makes every launch's bind group now (transients planned), so the first
   * encoding, inside a loop, makes none; otherwise they are made on first use.
   */
  bindAll(): void {
    for (const s of this.steps) {
      if (s.kind === "dispatch") {
        s.bindGroup ??= bindGroup(this.#device, s.pipeline, s.bindings, s.label);
      }
    }
  }

  /** The largest byte range any launch binds (storage and uniform buffers). */
  largestBinding(): number {
    let most = 0;
    for (const s of this.steps) {
      if (s.kind !== "dispatch") continue;
      for (const b of s.bindings) {
        if (b === null) continue;
        const x = b as unknown;
        if (x instanceof GPUBuffer || x instanceof TransientBuffer) {
          most = Math.max(most, (x as GPUBuffer).size);
        } else if ("buffer" in b) {
          most = Math.max(most, b.size ?? b.buffer.size - (b.offset ?? 0));
        }
      }
    }
    return most;
  }

  /** Number of kernel launches. */
  get dispatchCount(): number {
    return this.steps.filter((s) => s.kind === "dispatch").length;
  }

  /**
   * Records the steps (those in [from, to), default all) into `encoder`.
   * Consecutive launches share one compute pass unless `profiler` is given, in
   * which case each launch gets a pass with timestamp writes.
   */
  encode(
    encoder: GPUCommandEncoder,
    profiler?: Profiler,
    from = 0,
    to = this.steps.length,
  ): void {
    let pass: GPUComputePassEncoder | null = null;
    for (let k = from; k < to; k++) {
      const s = this.steps[k];
      if (s.kind === "dispatch") {
        if (profiler) {
          pass = encoder.beginComputePass({ timestampWrites: profiler.next(s) });
        } else if (!pass) pass = encoder.beginComputePass();
        s.bindGroup ??= bindGroup(this.#device, s.pipeline, s.bindings, s.label);
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.workgroups);
        if (profiler) {
          pass.end();
          pass = null;
        }
        continue;
      }
      if (pass) {
        pass.end();
        pass = null;
      }
      if (s.kind === "clear") encoder.clearBuffer(realBuffer(s.buffer), s.offset, s.size);
      else if (s.kind === "copy") {
        encoder.copyBufferToBuffer(
          realBuffer(s.src),
          s.srcOffset,
          realBuffer(s.dst),
          s.dstOffset,
          s.size,
        );
      } else {
        encoder.copyBufferToTexture(
          { buffer: realBuffer(s.src), bytesPerRow: s.width * 16, rowsPerImage: s.height },
          { texture: realTexture(s.dst) },
          [s.width, s.height],
        );
      }
    }
    pass?.end();
  }
}

/** Time of one profiled launch. */
export interface KernelTime {
  label: string;
  ms: number;
  flops: number;
}

/**
 * Per-launch GPU timing with timestamp queries. Create one with room for the
 * launches of a program, pass it to {@link Program.encode}, call
 * {@link Profiler.resolve} before finishing the encoder, submit, then
 * {@link Profiler.read}.
 */
export class Profiler {
  #device: GPUDevice;
  #query: GPUQuerySet;
  #resolveBuf: GPUBuffer;
  #readBuf: GPUBuffer;
  #steps: DispatchStep[] = [];
  #capacity: number;

  /** @param capacity the most launches one encoding may profile. */
  constructor(device: GPUDevice, capacity: number) {
    if (!device.features.has("timestamp-query")) {
      throw new Error("the adapter has no timestamp-query");
    }
    this.#device = device;
    this.#capacity = capacity;
    this.#query = device.createQuerySet({ type: "timestamp", count: 2 * capacity });
    this.#resolveBuf = device.createBuffer({
      size: 16 * capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.#readBuf = device.createBuffer({
      size: 16 * capacity,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** The timestamp writes for the next launch (called by {@link Program.encode}). */
  next(step: DispatchStep): GPUComputePassTimestampWrites {
    const i = this.#steps.length;
    if (i >= this.#capacity) throw new RangeError("profiler capacity exceeded");
    this.#steps.push(step);
    return {
      querySet: this.#query,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
  }

  /** Records the query resolution into `encoder` (after the profiled work). */
  resolve(encoder: GPUCommandEncoder): void {
    const n = 2 * this.#steps.length;
    if (n === 0) return;
    encoder.resolveQuerySet(this.#query, 0, n, this.#resolveBuf, 0);
    encoder.copyBufferToBuffer(this.#resolveBuf, 0, this.#readBuf, 0, 8 * n);
  }

  /** Reads the times of the submitted launches and resets for the next encoding. */
  async read(): Promise<KernelTime[]> {
    const steps = this.#steps;
    this.#steps = [];
    if (steps.length === 0) return [];
    await this.#readBuf.mapAsync(GPUMapMode.READ, 0, 16 * steps.length);
    const t = new BigUint64Array(this.#readBuf.getMappedRange(0, 16 * steps.length).slice(0));
    this.#readBuf.unmap();
    return steps.map((s, i) => ({
      label: s.label,
      ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6,
      flops: s.flops,
    }));
  }

  /** Frees the query set and buffers. */
  destroy(): void {
    this.#query.destroy();
    this.#resolveBuf.destroy();
    this.#readBuf.destroy();
  }
}

/**
 * Per-launch times without timestamp queries: every step of `programs`, in
 * order, is submitted alone and waited for; the median latency of an empty
 * submission is subtracted from each launch's time. Clears and copies run in
 * their place, untimed. Much slower than a normal run (one wait per step).
 */
export async function fenceProfile(
  device: GPUDevice,
  programs: Program[],
): Promise<KernelTime[]> {
  const submit = async (record: (enc: GPUCommandEncoder) => void) => {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    record(enc);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  const empty: number[] = [];
  for (let r = 0; r < 5; r++) empty.push(await submit(() => {}));
  empty.sort((a, b) => a - b);
  const latency = empty[2];
  const times: KernelTime[] = [];
  for (const prog of programs) {
    for (let k = 0; k < prog.steps.length; k++) {
      const ms = await submit((enc) => prog.encode(enc, undefined, k, k + 1));
      const s = prog.steps[k];
      if (s.kind === "dispatch") {
        times.push({ label: s.label, ms: Math.max(0, ms - latency), flops: s.flops });
      }
    }
  }
  return times;
}

/**
 * Copies `size` bytes at `offset` of `buffer` (which needs COPY_SRC usage) to
 * the CPU. Makes a staging buffer: for one-off reads, not for loops (use a
 * {@link ReadbackBatches} or staging buffers made before the loop there).
 */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  offset = 0,
  size = buffer.size - offset,
): Promise<ArrayBuffer> {
  const staging = device.createBuffer({
    size: Math.ceil(size / 4) * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, offset, staging, 0, Math.ceil(size / 4) * 4);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, size);
  staging.destroy();
  return out;
}

/**
 * Reads a few bytes back every iteration with one map per several
 * iterations: each iteration's copy goes to the next place of a staging
 * buffer holding `per` of them; {@link ReadbackBatches.flush} starts mapping
 * the buffer (after the submit of its last copy) and moves on to the next,
 * so mapping one batch overlaps the GPU filling the next. (A map waits for
 * the GPU's queue: one per iteration would stall the pipeline each time.)
 */
export class ReadbackBatches {
  #buffers: GPUBuffer[];
  #bytes: number;
  #per: number;
  #current = 0;
  /** Places filled in the current buffer. */
  #count = 0;
  #pending: Promise<ArrayBuffer[]>[] = [];

  /**
   * @param device the device.
   * @param bytes bytes read per iteration (a multiple of 4).
   * @param per iterations per staging buffer.
   * @param buffers staging buffers (batches in flight at most).
   */
  constructor(device: GPUDevice, bytes: number, per = 8, buffers = 2) {
    this.#bytes = Math.ceil(bytes / 4) * 4;
    this.#per = per;
    this.#buffers = Array.from({ length: buffers }, () =>
      device.createBuffer({
        size: this.#bytes * per,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }));
  }

  /**
   * Records the copy of `src`'s first bytes into the next place. Throws when
   * the batch is full ({@link ReadbackBatches.full}): flush it first.
   */
  record(encoder: GPUCommandEncoder, src: GPUBuffer): void {
    if (this.#count >= this.#per) throw new Error("readback batch full: flush it first");
    encoder.copyBufferToBuffer(
      src,
      0,
      this.#buffers[this.#current],
      this.#count * this.#bytes,
      this.#bytes,
    );
    this.#count++;
  }

  /** Whether the current batch has no free place. */
  get full(): boolean {
    return this.#count >= this.#per;
  }

  /** Batches mapped and not yet taken. */
  get inFlight(): number {
    return this.#pending.length;
  }

  /**
   * Starts mapping the current batch (call after the submit of its last
   * copy) and moves to the next staging buffer; the batch's reads come from
   * {@link ReadbackBatches.take}. Waits first for the batch that last used
   * that buffer, when it is still mapping.
   */
  async flush(): Promise<void> {
    if (this.#count === 0) return;
    const buffer = this.#buffers[this.#current];
    const [count, bytes] = [this.#count, this.#bytes];
    this.#pending.push(
      buffer.mapAsync(GPUMapMode.READ).then(() => {
        const all = buffer.getMappedRange().slice(0, count * bytes);
        buffer.unmap();
        return Array.from({ length: count }, (_, k) => all.slice(k * bytes, (k + 1) * bytes));
      }),
    );
    this.#current = (this.#current + 1) % this.#buffers.length;
    this.#count = 0;
    // The next buffer must be unmapped before its first copy is recorded.
    if (this.#pending.length >= this.#buffers.length) await this.#pending[0];
  }

  /** The oldest flushed batch's reads, in order (waits for its map). */
  take(): Promise<ArrayBuffer[]> {
    const p = this.#pending.shift();
    if (!p) throw new Error("no readback batch in flight");
    return p;
  }

  /** Frees the staging buffers (waiting for pending maps). */
  async destroy(): Promise<void> {
    for (const p of this.#pending) await p.catch(() => {});
    for (const b of this.#buffers) b.destroy();
  }
}
