/**
 * The engine's recorded programs, cached by what they depend on: a plan is
 * recorded once per input size and configuration, its transients' memory
 * planned (src/engine/gpu/memory.ts), its bind groups made, and kept for the
 * next call with the same key (the six newest are kept). A plan is built
 * inside the device's error scopes: out of memory, it is dropped whole.
 * @module
 */
import { UserError } from "../errors.ts";
import { withMemoryScope } from "../gpu/faults.ts";
import { GpuLimitError } from "../gpu/pool.ts";
import type { Program } from "../gpu/scheduler.ts";
import { type OpContext, Scope } from "../ops/context.ts";

/** A recorded program with the buffers it owns. */
export interface Plan {
  prog: Program;
  scope: Scope;
}

/** How many plans a cache keeps. */
const KEEP = 6;

/** Plans by key, newest last. */
export class PlanCache {
  readonly #ctx: OpContext;
  #plans = new Map<string, Plan>();
  #largestBinding = 0;

  /** @param ctx the op context whose pool the plans' buffers come from */
  constructor(ctx: OpContext) {
    this.#ctx = ctx;
  }

  /** The largest byte range any launch of any plan made binds. */
  get largestBinding(): number {
    return this.#largestBinding;
  }

  /**
   * The cached plan for `key`, built on first use: `build` records into a
   * fresh scope, whose memory is then planned and whose bind groups made.
   * A buffer over the device's limits becomes a {@link UserError}; a device
   * out of memory, a {@link GpuOutOfMemoryError} (the plan is dropped).
   */
  async get<P extends Plan>(key: string, build: (scope: Scope) => Promise<P>): Promise<P> {
    const hit = this.#plans.get(key);
    if (hit) {
      this.#plans.delete(key);
      this.#plans.set(key, hit);
      return hit as P;
    }
    const scope = new Scope(this.#ctx.pool);
    const pool = this.#ctx.pool;
    let p: P;
    try {
      p = await withMemoryScope(this.#ctx.device, () => pool.heldBytes, async () => {
        const plan = await build(scope);
        scope.finalize(this.#ctx.device, [plan.prog]);
        plan.prog.bindAll();
        return plan;
      });
      this.#largestBinding = Math.max(this.#largestBinding, p.prog.largestBinding());
    } catch (e) {
      scope.dispose();
      if (e instanceof GpuLimitError) {
        throw new UserError(`image too large for this GPU: ${e.message}`);
      }
      throw e;
    }
    this.#plans.set(key, p);
    while (this.#plans.size > KEEP) {
      const [k, old] = this.#plans.entries().next().value!;
      old.scope.dispose();
      this.#plans.delete(k);
    }
    return p;
  }

  /** Disposes every plan: their buffers go back to the pool. */
  clear(): void {
    for (const p of this.#plans.values()) p.scope.dispose();
    this.#plans.clear();
  }
}
