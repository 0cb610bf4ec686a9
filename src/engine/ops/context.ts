/**
 * What every op wrapper needs: the device, the pipeline cache, and a scope
 * that takes buffers from the pool for one plan and gives them back when the
 * plan is disposed.
 * @module
 */
import type { BufferPool } from "../gpu/pool.ts";
import type { PipelineCache } from "../gpu/pipelines.ts";
import type { Program } from "../gpu/scheduler.ts";
import { type MemoryPlan, planMemory, TransientBuffer, TransientTexture } from "../gpu/memory.ts";

/** Usage of activation, gradient and weight buffers. */
export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Bytes of the uniform arrays weights are read through (WebGPU's default binding limit). */
export const UNIFORM_ARRAY_BYTES = 65536;

/**
 * The `bytes` bytes of `buffer` at byte `offset`, bound as a uniform array of
 * {@link UNIFORM_ARRAY_BYTES}; null when they do not fit one, the buffer was
 * not made for that ({@link Scope.weights}) or the offset is not aligned.
 */
export function uniformArray(
  buffer: GPUBuffer,
  bytes: number,
  offset = 0,
): { buffer: GPUBuffer; offset: number; size: number } | null {
  return buffer.usage & GPUBufferUsage.UNIFORM && bytes <= UNIFORM_ARRAY_BYTES &&
      offset % 256 === 0 && offset + UNIFORM_ARRAY_BYTES <= buffer.size
    ? { buffer, offset, size: UNIFORM_ARRAY_BYTES }
    : null;
}

/** A position in a storage buffer, in f32 elements. */
export interface View {
  buffer: GPUBuffer;
  /** Offset in elements (f32). */
  offset: number;
  /**
   * For [C][H][W] tensors: elements from one channel plane to the next
   * (≥ H·W); dense (H·W) when absent. See {@link planeStride}.
   */
  plane?: number;
}

/** Shorthand for a view at `offset` elements into `buffer`, with an optional plane stride. */
export function view(buffer: GPUBuffer, offset = 0, plane?: number): View {
  return plane === undefined ? { buffer, offset } : { buffer, offset, plane };
}

/**
 * The plane stride of the network's activations and gradients: H·W rounded up
 * to a multiple of 4, so every channel plane starts on a vec4 boundary and
 * the 1×1 convolutions move aligned vec4s. The padding elements hold
 * unspecified values that no kernel lets into the valid pixels.
 */
export function planeStride(h: number, w: number): number {
  return Math.ceil(h * w / 4) * 4;
}

/**
 * A buffer's vec4s mirrored in a 2D `rgba32float` texture by a copy
 * ({@link Program.copyToTexture}), for the kernels that read them many times
 * from scattered places: lavapipe fetches texels far faster than it loads
 * storage, which Mesa 22.3 runs as a loop over the lanes (bench/NOTES.md,
 * rows 49–50). Vec4 t of the buffer is texel (t mod width, ⌊t / width⌋); the
 * width is a power of 2 and rows are whole multiples of 256 bytes, as copies
 * need, so the buffer must hold {@link FeatureTexture.floats} floats.
 */
export interface FeatureTexture {
  texture: GPUTexture;
  view: GPUTextureView;
  /** Texels per row: a power of 2, at least 16. */
  width: number;
  /** Rows. */
  height: number;
  /** Floats the copy reads from the buffer: width·height·4. */
  floats: number;
}

/**
 * The shape of a {@link FeatureTexture} mirroring `floats` floats (a
 * multiple of 4) on a device whose 2D textures are at most `maxDim` texels
 * on a side: the narrowest power-of-2 width from 16 whose rows fit; null
 * when none does.
 */
export function featureTextureShape(
  floats: number,
  maxDim: number,
): { width: number; height: number } | null {
  const n4 = Math.ceil(floats / 4);
  for (let width = 16; width <= maxDim; width *= 2) {
    const height = Math.ceil(n4 / width);
    if (height <= maxDim) return { width, height };
  }
  return null;
}

/** A texture's `tex_shift` kernel parameter: log2 of its width (0 without one). */
export function textureShift(tex?: FeatureTexture | null): number {
  return tex ? Math.log2(tex.width) : 0;
}

/**
 * Throws a RangeError naming `what` unless `tex` (when given) holds the
 * buffer's elements below `end`.
 */
export function checkTextureHolds(
  tex: FeatureTexture | null | undefined,
  end: number,
  label: string,
  what: string,
): void {
  if (tex && tex.floats < end) throw new RangeError(`${label}: the texture does not hold ${what}`);
}

/**
 * Buffers taken from a pool for one plan, all given back by
 * {@link Scope.dispose}. Besides buffers held for the plan's whole life
 * ({@link Scope.floats}), a plan's intermediates are transient
 * ({@link Scope.temp}, {@link Scope.tempTexture}): placeholders until
 * {@link Scope.finalize} plans the memory of the recorded programs
 * (src/engine/gpu/memory.ts), so that intermediates whose lifetimes do not
 * overlap share one buffer.
 */
export class Scope {
  #pool: BufferPool;
  #held: GPUBuffer[] = [];
  #textures: GPUTexture[] = [];
  #transients: (TransientBuffer | TransientTexture)[] = [];
  #plan: MemoryPlan | null = null;

  /** @param pool where the buffers come from. */
  constructor(pool: BufferPool) {
    this.#pool = pool;
  }

  /** A storage buffer of `floats` f32 elements. */
  floats(floats: number, label: string): GPUBuffer {
    return this.acquire(floats * 4, STORAGE, label);
  }

  /** The largest buffer the scope's pool makes (bytes). */
  get maxBufferBytes(): number {
    return this.#pool.maxBufferBytes;
  }

  /**
   * A transient storage buffer of `floats` f32 elements: its contents live
   * only from the first step using it to the last in each run of the
   * program (the first must write what later steps read), and it may share
   * memory with other transients once {@link Scope.finalize} has planned it.
   * It may be used only in steps of the programs given to `finalize`, never
   * read back or written from the CPU.
   */
  temp(floats: number, label: string): GPUBuffer {
    return this.tempAcquire(floats * 4, STORAGE, label);
  }

  /** A transient buffer of any usage (see {@link Scope.temp}). */
  tempAcquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    this.#pool.check(bytes, label);
    const t = new TransientBuffer(bytes, usage, label);
    this.#transients.push(t);
    return t as unknown as GPUBuffer;
  }

  /**
   * A buffer of `floats` f32 elements that kernels may also bind as uniform
   * arrays of {@link UNIFORM_ARRAY_BYTES} (up to four, at aligned offsets:
   * {@link uniformArray}); it gets that many bytes of slack so every array
   * lies inside it. Larger weights get a plain storage buffer. With
   * `transient`, a {@link Scope.temp} one.
   */
  weights(floats: number, label: string, transient = false): GPUBuffer {
    if (floats * 4 <= 4 * UNIFORM_ARRAY_BYTES) {
      const bytes = floats * 4 + UNIFORM_ARRAY_BYTES;
      const usage = STORAGE | GPUBufferUsage.UNIFORM;
      return transient ? this.tempAcquire(bytes, usage, label) : this.acquire(bytes, usage, label);
    }
    return transient ? this.temp(floats, label) : this.floats(floats, label);
  }

  /** Any buffer from the pool, held until {@link Scope.dispose}. */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const b = this.#pool.acquire(bytes, usage, label);
    this.#held.push(b);
    return b;
  }

  /**
   * A {@link FeatureTexture} mirroring `floats` floats of a buffer,
   * destroyed by {@link Scope.dispose} (textures are made with the plan, like
   * the pool's buffers, never in an iteration); null when the device's
   * textures are too small for it. `maxDim` (tests) caps the side below the
   * device's.
   */
  featureTexture(
    device: GPUDevice,
    floats: number,
    label: string,
    maxDim = device.limits.maxTextureDimension2D,
  ): FeatureTexture | null {
    const shape = featureTextureShape(floats, maxDim);
    if (!shape) return null;
    const texture = this.#makeTexture(device, shape.width, shape.height, label);
    return {
      texture,
      view: texture.createView(),
      ...shape,
      floats: shape.width * shape.height * 4,
    };
  }

  /**
   * A transient {@link FeatureTexture} (see {@link Scope.temp}): backed by a
   * texture of the same width shared with others once planned; null when the
   * device's textures are too small for it.
   */
  tempTexture(
    device: GPUDevice,
    floats: number,
    label: string,
    maxDim = device.limits.maxTextureDimension2D,
  ): FeatureTexture | null {
    const shape = featureTextureShape(floats, maxDim);
    if (!shape) return null;
    const t = new TransientTexture(shape.width, shape.height, label);
    this.#transients.push(t);
    return {
      texture: t as unknown as GPUTexture,
      view: t.view as unknown as GPUTextureView,
      ...shape,
      floats: shape.width * shape.height * 4,
    };
  }

  #makeTexture(device: GPUDevice, width: number, height: number, label: string): GPUTexture {
    this.#pool.reserve(width * height * 16, `${label} texture`);
    const texture = device.createTexture({
      label,
      size: [width, height],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    this.#textures.push(texture);
    this.#pool.trackTexture(width * height * 16);
    return texture;
  }

  /**
   * Plans the memory of the transients used by `programs` (one iteration,
   * in the order they run): each gets a backing, shared where lifetimes do
   * not overlap. Call once, after recording and before the first encoding;
   * a scope without transients needs no call.
   */
  finalize(device: GPUDevice, programs: Program[]): MemoryPlan {
    if (this.#plan) throw new Error("scope finalized twice");
    this.#plan = planMemory(programs.flatMap((p) => p.uses()), {
      buffer: (size, usage, label) => this.acquire(size, usage, label),
      texture: (width, height, label) => this.#makeTexture(device, width, height, label),
    });
    const unused = this.#transients.filter((t) => t.backing === null);
    if (unused.length > 0) {
      throw new Error(
        `${unused.length} transient(s) of this scope are used by none of the programs ` +
          `planned: ${unused.slice(0, 4).map((t) => t.label).join(", ")}`,
      );
    }
    return this.#plan;
  }

  /** The memory plan made by {@link Scope.finalize}, if any. */
  get memoryPlan(): MemoryPlan | null {
    return this.#plan;
  }

  /** Gives every held buffer back to the pool and destroys the textures. */
  dispose(): void {
    for (const b of this.#held) this.#pool.release(b);
    this.#held = [];
    for (const t of this.#textures) {
      this.#pool.trackTexture(-t.width * t.height * 16);
      t.destroy();
    }
    this.#textures = [];
  }
}

/**
 * Tile shapes of the templated kernels (template parameters; see
 * src/engine/gpu/template.ts). The defaults were the fastest measured on lavapipe
 * (bench/NOTES.md); other adapters may prefer others.
 */
export interface TileTable {
  /**
   * pointwise.wgsl (1×1 convolutions): TMV vec4 channel groups × TN groups of
   * 4 pixels per invocation, WG invocations (TMV is halved for layers whose
   * channels it does not divide).
   */
  pointwise: { TMV: number; TN: number; WG: number };
  /** pointwise.wgsl for the Gram backward (C×C by C×P). */
  gramBackward: { TMV: number; TN: number; WG: number };
  /**
   * conv3x3.wgsl, stride 1: TMV vec4 channel groups × a TN-pixel row segment,
   * WG invocations, U-fold channel unroll, XV 1 for vec4 row loads.
   */
  conv3x3: Conv3x3Tile;
  /** conv3x3.wgsl with stride 2 (conv1). */
  conv3x3Strided: Conv3x3Tile;
  /** conv3x3.wgsl for input gradients (16–64 output channels). */
  conv3x3Gradient: Conv3x3Tile;
  /** conv_s2_backward.wgsl: 2 × 2Q block of dx per invocation, WG invocations. */
  stridedBackward: { Q: number; WG: number };
  /**
   * gram.wgsl: T×T tile per invocation (halved for channel counts T does not
   * divide), WG invocations, pixel chunks of CHUNK; a layer of at least BIG
   * chunks (0: none) with F in a texture gets 2T×2T tiles when its channels
   * allow, which fetch F half as often per product (bench/NOTES.md, row 61:
   * off by default: on lavapipe its kernel compiles in ≈ 20 s instead of 2 s, for −11%
   * of the Gram launches at 512×683).
   */
  gram: { T: number; WG: number; CHUNK: number; BIG: number };
}

/** Tile of conv3x3.wgsl (see {@link TileTable}). */
export interface Conv3x3Tile {
  TMV: number;
  TN: number;
  WG: number;
  U: number;
  XV: number;
}

/** lavapipe's default tile table, at 8 invocations per SIMD vector (256-bit vectors). */
export const DEFAULT_TILES: TileTable = {
  pointwise: { TMV: 8, TN: 4, WG: 8 },
  gramBackward: { TMV: 8, TN: 4, WG: 16 },
  conv3x3: { TMV: 8, TN: 16, WG: 16, U: 1, XV: 1 },
  conv3x3Strided: { TMV: 8, TN: 16, WG: 16, U: 1, XV: 0 },
  conv3x3Gradient: { TMV: 4, TN: 16, WG: 16, U: 1, XV: 1 },
  stridedBackward: { Q: 16, WG: 64 },
  gram: { T: 16, WG: 8, CHUNK: 256, BIG: 0 },
};

/**
 * The starting table on hardware GPUs (not measured here: no GPU was at
 * hand): the lavapipe table's 128 vec4 accumulators per invocation would
 * spill out of a GPU thread's registers, and its 16-invocation workgroups
 * would fill half a warp. So: 8–16 vec4 accumulators, 64–128 invocations.
 * Every entry is one of `deno task tune`'s candidates, which refines it.
 */
export const GPU_TILES: TileTable = {
  pointwise: { TMV: 2, TN: 2, WG: 64 },
  gramBackward: { TMV: 2, TN: 2, WG: 64 },
  conv3x3: { TMV: 2, TN: 4, WG: 64, U: 1, XV: 1 },
  conv3x3Strided: { TMV: 2, TN: 4, WG: 64, U: 1, XV: 1 },
  conv3x3Gradient: { TMV: 2, TN: 4, WG: 64, U: 1, XV: 1 },
  stridedBackward: { Q: 4, WG: 128 },
  gram: { T: 8, WG: 64, CHUNK: 256, BIG: 0 },
};

/**
 * lavapipe's table at 16 invocations per SIMD vector (512-bit vectors, see
 * src/deno/driver.ts): {@link DEFAULT_TILES} with every workgroup at least one
 * vector, the 1×1 convolutions' and the Gram partial sums' 8 invocations
 * leaving half of each vector idle, and the Gram backward at 4×4 (half the
 * accumulators of 8×4; at 512×683 its launches about 3% faster, at 192×256
 * even with it, bench/NOTES.md row 63).
 */
export const WIDE_TILES: TileTable = {
  ...DEFAULT_TILES,
  pointwise: { ...DEFAULT_TILES.pointwise, WG: 16 },
  gramBackward: { TMV: 4, TN: 4, WG: 16 },
  gram: { ...DEFAULT_TILES.gram, WG: 16 },
};

/**
 * The default table for an adapter: lavapipe's for software adapters
 * ({@link WIDE_TILES} at `cpuLanes` 16 or more), {@link GPU_TILES} otherwise.
 */
export function defaultTiles(isFallback: boolean, cpuLanes = 8): TileTable {
  return !isFallback ? GPU_TILES : cpuLanes >= 16 ? WIDE_TILES : DEFAULT_TILES;
}

/** The device-wide parts the op wrappers share. */
export class OpContext {
  /** The device. */
  readonly device: GPUDevice;
  /** Compiled pipelines. */
  readonly pipelines: PipelineCache;
  /** The buffer pool. */
  readonly pool: BufferPool;
  /** A small zero buffer bound where a kernel's optional input is unused. */
  readonly dummy: GPUBuffer;
  /**
   * A small buffer bound where a kernel's writable output is unused: WebGPU
   * (Chromium's Dawn) refuses a dispatch that binds one buffer to two writable
   * bindings, even one the kernel never writes.
   */
  readonly sink: GPUBuffer;
  /** Tile shapes of the templated kernels. */
  readonly tiles: TileTable;

  /** Builds the context for `device`. */
  constructor(
    device: GPUDevice,
    pool: BufferPool,
    pipelines: PipelineCache,
    tiles: TileTable = DEFAULT_TILES,
  ) {
    this.device = device;
    this.tiles = tiles;
    this.pool = pool;
    this.pipelines = pipelines;
    this.dummy = device.createBuffer({ size: 256, usage: STORAGE, label: "dummy" });
    this.sink = device.createBuffer({ size: 256, usage: STORAGE, label: "sink" });
  }

  /**
   * A uniform buffer holding `words` (u32 or f32 bit patterns), held by
   * `scope`: a kernel's `Params`, which the shaders declare as
   * `array<Params, 2>` and read at an index the driver cannot fold, so the
   * buffer has room for two.
   */
  uniform(scope: Scope, words: ArrayBufferView<ArrayBuffer>, label: string): GPUBuffer {
    const b = scope.acquire(
      Math.max(256, 2 * words.byteLength),
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label,
    );
    this.device.queue.writeBuffer(b, 0, words);
    return b;
  }

  /**
   * Uploads `data` into a new storage buffer held by `scope`; with
   * `asWeights`, one that kernels may also read as uniform arrays
   * ({@link Scope.weights}).
   */
  upload(
    scope: Scope,
    data: Float32Array<ArrayBuffer>,
    label: string,
    asWeights = true,
  ): GPUBuffer {
    const b = asWeights ? scope.weights(data.length, label) : scope.floats(data.length, label);
    this.device.queue.writeBuffer(b, 0, data);
    return b;
  }

  /** Frees the context's own buffers. */
  destroy(): void {
    this.dummy.destroy();
    this.sink.destroy();
  }
}
