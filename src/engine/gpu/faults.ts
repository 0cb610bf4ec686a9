/**
 * What goes wrong on real hardware, as the engine sees it — a device out of
 * memory, a device lost — and the fault plans that make it happen on any
 * adapter for tests (the edges read them from `STYLIZE_FAULT`):
 *
 * - `oom-above=BYTES`: every allocation that would take the engine's GPU
 *   memory past BYTES fails as an out-of-memory error of the device does
 *   (the plan being built is dropped and {@link GpuOutOfMemoryError} thrown);
 * - `lose-device@N[,M…]`: the device is lost, as a driver reset loses it,
 *   when iteration N (1-based, counted over the whole run) starts.
 *
 * Several go together with `;` (`lose-device@5;oom-above=400M`).
 * @module
 */
import { UserError } from "../errors.ts";

/** A fault plan (see the module doc). */
export interface Faults {
  /** Allocations past this many bytes fail as out of memory. */
  oomAbove?: number;
  /** Iterations (1-based, over the run) at whose start the device is lost. */
  loseAt?: number[];
}

/** The device could not give memory for a plan (reported by it, or by a fault plan). */
export class GpuOutOfMemoryError extends Error {
  /** The GPU memory the engine held when the allocation failed, with the request (bytes). */
  readonly bytes: number;
  /** @param bytes see {@link GpuOutOfMemoryError.bytes} */
  constructor(bytes: number, message: string) {
    super(message);
    this.name = "GpuOutOfMemoryError";
    this.bytes = bytes;
  }
}

/** The device was lost (driver reset, GPU process restart, watchdog, fault plan). */
export class DeviceLostError extends Error {
  /** @param message the device's own account of it */
  constructor(message: string) {
    super(message);
    this.name = "DeviceLostError";
  }
}

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * A size in bytes as people write it: `1.5G`, `800M`, `400000`, `2GiB`,
 * `512MB` (binary units).
 * @throws {UserError} naming `what` when it is not one
 */
export function parseBytes(what: string, v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(v);
  const n = m ? Number(m[1]) * UNITS[m[2].toUpperCase()] : NaN;
  if (!m || !(n >= 1)) {
    throw new UserError(`${what}: "${v}" is not a size (e.g. 1.5G, 800M, 400000 bytes)`);
  }
  return Math.floor(n);
}

/** Parses a fault plan (`lose-device@5,9;oom-above=400M`). */
export function parseFaults(spec: string): Faults {
  const faults: Faults = {};
  for (const part of spec.split(";").map((s) => s.trim()).filter((s) => s)) {
    const lose = /^lose-device@(\d+(?:,\d+)*)$/.exec(part);
    const oom = /^oom-above=(.+)$/.exec(part);
    if (lose) faults.loseAt = lose[1].split(",").map(Number);
    else if (oom) faults.oomAbove = parseBytes("oom-above", oom[1]);
    else {
      throw new UserError(
        `STYLIZE_FAULT: "${part}" is not lose-device@N[,M…] or oom-above=BYTES`,
      );
    }
  }
  return faults;
}

/** Formats bytes as GiB (one decimal) or MiB. */
export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`;
}

/**
 * Runs `fn`, which makes GPU objects, inside error scopes: an out-of-memory
 * error the device reports for them (or a {@link GpuOutOfMemoryError} thrown
 * by the pool's fault plan) comes out as a {@link GpuOutOfMemoryError} with
 * the bytes `held()` then; the validation errors that follow from an
 * invalid (unallocated) object are swallowed with it. Other validation
 * errors come out as errors.
 */
export async function withMemoryScope<T>(
  device: GPUDevice,
  held: () => number,
  fn: () => Promise<T>,
): Promise<T> {
  device.pushErrorScope("validation");
  device.pushErrorScope("out-of-memory");
  let value: T | undefined;
  let thrown: unknown = null;
  try {
    value = await fn();
  } catch (e) {
    thrown = e;
  }
  const oom = await device.popErrorScope();
  const invalid = await device.popErrorScope();
  if (oom) {
    throw new GpuOutOfMemoryError(
      held(),
      `out of memory at ${formatBytes(held())}: ${oom.message}`,
    );
  }
  if (thrown) throw thrown;
  if (invalid) throw new Error(`GPU validation error: ${invalid.message}`);
  return value as T;
}
