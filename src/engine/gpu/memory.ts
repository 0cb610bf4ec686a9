/**
 * Memory planned over a recorded iteration. A plan's intermediate buffers and
 * textures (activations, gradients, scratch) are recorded as *transient*
 * placeholders; once every program of the iteration is recorded,
 * {@link planMemory} finds the steps each one is first and last used in and
 * gives placeholders whose lifetimes do not overlap the same GPU buffer (or
 * texture): a liveness plan, the way a compiler allocates registers, rather
 * than a free list at record time. A transient's contents do not survive from
 * one iteration to the next: the first step that uses it in an iteration
 * must write it.
 * @module
 */
/** A buffer that exists only while the steps using it run ({@link planMemory} backs it). */
export class TransientBuffer {
  /** Bytes it must hold. */
  readonly size: number;
  /** GPU usage flags its backing buffer needs. */
  readonly usage: GPUBufferUsageFlags;
  /** For errors and profiles. */
  readonly label: string;
  /** The GPU buffer backing it, once planned. */
  backing: GPUBuffer | null = null;

  /** @param size bytes; @param usage flags; @param label name. */
  constructor(size: number, usage: GPUBufferUsageFlags, label: string) {
    this.size = size;
    this.usage = usage;
    this.label = label;
  }
}

/** A 2D `rgba32float` texture that exists only while the steps using it run. */
export class TransientTexture {
  /** Texels per row (the backing texture's width is exactly this). */
  readonly width: number;
  /** Rows needed (the backing texture may have more). */
  readonly height: number;
  /** For errors. */
  readonly label: string;
  /** Its one view, as bindings name it. */
  readonly view: TransientView;
  /** The texture backing it, once planned, and that texture's view. */
  backing: { texture: GPUTexture; view: GPUTextureView } | null = null;

  /** @param width texels per row; @param height rows; @param label name. */
  constructor(width: number, height: number, label: string) {
    this.width = width;
    this.height = height;
    this.label = label;
    this.view = new TransientView(this);
  }
}

/** The view of a {@link TransientTexture}, as a binding names it. */
export class TransientView {
  /** The texture it views. */
  readonly texture: TransientTexture;
  /** @param texture the texture it views. */
  constructor(texture: TransientTexture) {
    this.texture = texture;
  }
}

/** The GPU buffer behind `b`: itself, or a planned transient's backing. */
export function realBuffer(b: GPUBuffer): GPUBuffer {
  const t = b as unknown as TransientBuffer | GPUBuffer;
  if (t instanceof TransientBuffer) {
    if (!t.backing) throw new Error(`transient buffer ${t.label} used before its plan`);
    return t.backing;
  }
  return t;
}

/** The GPU texture behind `t`: itself, or a planned transient's backing. */
export function realTexture(t: GPUTexture): GPUTexture {
  const x = t as unknown as TransientTexture | GPUTexture;
  if (x instanceof TransientTexture) {
    if (!x.backing) throw new Error(`transient texture ${x.label} used before its plan`);
    return x.backing.texture;
  }
  return x;
}

/** The GPU texture view behind `v`: itself, or a planned transient texture's view. */
export function realView(v: GPUTextureView): GPUTextureView {
  const x = v as unknown as TransientView | GPUTextureView;
  if (x instanceof TransientView) {
    if (!x.texture.backing) {
      throw new Error(`transient texture ${x.texture.label} used before its plan`);
    }
    return x.texture.backing.view;
  }
  return x;
}

/** The transient resources a step touches (its buffers, textures or views). */
export type StepUses = readonly unknown[];

/** A span of steps, inclusive, in the order of one iteration. */
interface Life {
  first: number;
  last: number;
}

/** What {@link planMemory} did. */
export interface MemoryPlan {
  /** Transient buffers and textures planned. */
  transients: number;
  /** GPU buffers and textures backing them. */
  backings: number;
  /** Bytes the transients would take each on its own. */
  unsharedBytes: number;
  /** Bytes of the backings. */
  bytes: number;
}

/** First and last step of every transient placeholder (buffers and textures) in `steps`. */
function lifetimes(steps: StepUses[]): Map<TransientBuffer | TransientTexture, Life> {
  const lives = new Map<TransientBuffer | TransientTexture, Life>();
  steps.forEach((uses, k) => {
    for (const u of uses) {
      const r = u instanceof TransientView ? u.texture : u;
      if (!(r instanceof TransientBuffer || r instanceof TransientTexture)) continue;
      const life = lives.get(r);
      if (life) life.last = k;
      else lives.set(r, { first: k, last: k });
    }
  });
  return lives;
}

/** A backing and the step after which it is free again. */
interface Slot<R> {
  resource: R;
  freeAfter: number;
}

/**
 * The backing of a transient living over `life`: the smallest slot that
 * `fits` it and is free before its first step, else a new one from `make`
 * (counted in `plan`); the slot is then taken until its last step.
 */
function place<R>(
  slots: Slot<R>[],
  life: Life,
  plan: MemoryPlan,
  o: { fits(r: R): boolean; size(r: R): number; make(): R },
): R {
  let slot = slots.filter((s) => s.freeAfter < life.first && o.fits(s.resource))
    .sort((a, b) => o.size(a.resource) - o.size(b.resource))[0];
  if (!slot) {
    slot = { resource: o.make(), freeAfter: -1 };
    slots.push(slot);
    plan.backings++;
    plan.bytes += o.size(slot.resource);
  }
  slot.freeAfter = life.last;
  return slot.resource;
}

/**
 * Gives every transient in `steps` (what each step of an iteration uses, in
 * order) a backing: in order of first use, the smallest free backing that
 * fits (same usage; for textures the same width and at least the height) and
 * whose last user's last step is before this one's first, else a new one from
 * `make`. Returns the bytes planned.
 */
export function planMemory(
  steps: StepUses[],
  make: {
    buffer(size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer;
    texture(width: number, height: number, label: string): GPUTexture;
  },
): MemoryPlan {
  const lives = [...lifetimes(steps)].sort((a, b) => a[1].first - b[1].first);
  const buffers: Slot<GPUBuffer>[] = [];
  const textures: Slot<GPUTexture>[] = [];
  const plan: MemoryPlan = { transients: lives.length, backings: 0, unsharedBytes: 0, bytes: 0 };
  for (const [r, life] of lives) {
    if (r instanceof TransientBuffer) {
      plan.unsharedBytes += r.size;
      r.backing = place(buffers, life, plan, {
        fits: (b) => b.usage === r.usage && b.size >= r.size,
        size: (b) => b.size,
        make: () => make.buffer(r.size, r.usage, r.label),
      });
    } else {
      plan.unsharedBytes += r.width * r.height * 16;
      const texture = place(textures, life, plan, {
        fits: (t) => t.width === r.width && t.height >= r.height,
        size: (t) => t.width * t.height * 16,
        make: () => make.texture(r.width, r.height, r.label),
      });
      r.backing = { texture, view: texture.createView() };
    }
  }
  return plan;
}
