/**
 * An image-sized tensor [3][H][W] on the GPU, in bands of rows so that no
 * buffer is larger than the pool allows (one band unless the image is very
 * large): each band holds rows y0…y0+rows−1 of all three channels,
 * [3][rows][W]. The image, its gradient and Adam's moments are kept so; the
 * tiles of a split image are cropped out of them and their gradients added
 * back in.
 * @module
 */
import type { Program } from "../gpu/scheduler.ts";
import { crop, cropBackward, type Planes } from "../ops/crop.ts";
import type { OpContext, Scope } from "../ops/context.ts";
import type { Rect } from "./tiles.ts";

/** One band of an {@link ImageBuffers}: rows y0…y0+rows−1 of all channels, [3][rows][W]. */
export interface ImageBand {
  y0: number;
  rows: number;
  buffer: GPUBuffer;
}

/** An image-sized [3][H][W] tensor in bands of rows. */
export interface ImageBuffers {
  h: number;
  w: number;
  bands: ImageBand[];
}

/** Rows per band of an h×w image whose bands may have at most `maxBytes` bytes. */
export function bandRows(h: number, w: number, maxBytes: number): number {
  const rows = Math.floor(maxBytes / (3 * w * 4));
  if (rows < 1) throw new RangeError(`an image row of ${w} pixels is over ${maxBytes} bytes`);
  return Math.min(h, rows);
}

/** Makes the bands of an h×w image (each at most the pool's largest buffer), held by `scope`. */
export function imageBuffers(scope: Scope, h: number, w: number, label: string): ImageBuffers {
  const per = bandRows(h, w, scope.maxBufferBytes);
  const bands: ImageBand[] = [];
  for (let y0 = 0; y0 < h; y0 += per) {
    const rows = Math.min(per, h - y0);
    bands.push({ y0, rows, buffer: scope.floats(3 * rows * w, `${label}.${bands.length}`) });
  }
  return { h, w, bands };
}

/** The bands of `img` as the same bands of another tensor would be (e.g. Adam's moments). */
export function likeImage(scope: Scope, img: ImageBuffers, label: string): ImageBuffers {
  return {
    h: img.h,
    w: img.w,
    bands: img.bands.map((b, i) => ({
      ...b,
      buffer: scope.floats(3 * b.rows * img.w, `${label}.${i}`),
    })),
  };
}

/** Band `b`'s part of a [3][H][W] tensor `data`, as the band holds it ([3][rows][W]). */
function bandData(img: ImageBuffers, b: ImageBand, data: Float32Array): Float32Array<ArrayBuffer> {
  const { h, w } = img;
  if (img.bands.length === 1) return new Float32Array(data);
  const out = new Float32Array(3 * b.rows * w);
  for (let c = 0; c < 3; c++) {
    out.set(data.subarray(c * h * w + b.y0 * w, c * h * w + (b.y0 + b.rows) * w), c * b.rows * w);
  }
  return out;
}

/** Uploads a [3][H][W] tensor into the bands. */
export function writeImageBuffers(queue: GPUQueue, img: ImageBuffers, data: Float32Array): void {
  if (data.length !== 3 * img.h * img.w) {
    throw new RangeError(`${data.length} values for a 3×${img.h}×${img.w} image`);
  }
  for (const b of img.bands) queue.writeBuffer(b.buffer, 0, bandData(img, b, data));
}

/** The read-back ranges of the bands (for Engine.read), in band order. */
export function imageRanges(
  img: ImageBuffers,
): { buffer: GPUBuffer; offset: number; floats: number }[] {
  return img.bands.map((b) => ({ buffer: b.buffer, offset: 0, floats: 3 * b.rows * img.w }));
}

/** The [3][H][W] tensor from the bands' data as read back (one array per band). */
export function joinBands(img: ImageBuffers, parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const { h, w } = img;
  const out = new Float32Array(3 * h * w);
  img.bands.forEach((b, i) => {
    for (let c = 0; c < 3; c++) {
      out.set(parts[i].subarray(c * b.rows * w, (c + 1) * b.rows * w), c * h * w + b.y0 * w);
    }
  });
  return out;
}

/** A band as crop.wgsl's planes. */
function bandPlanes(img: ImageBuffers, b: ImageBand): Planes {
  return { buffer: b.buffer, offset: 0, plane: b.rows * img.w, width: img.w };
}

/** The bands overlapping rows r.y0…r.y1−1, each with the rows it holds of them. */
function bandsOver(img: ImageBuffers, r: Rect): { band: ImageBand; y0: number; y1: number }[] {
  return img.bands.flatMap((band) => {
    const y0 = Math.max(r.y0, band.y0);
    const y1 = Math.min(r.y1, band.y0 + band.rows);
    return y1 > y0 ? [{ band, y0, y1 }] : [];
  });
}

/**
 * Appends the copy of the image's rectangle `r` into `tile` ([3][rows][cols],
 * dense, at offset 0).
 */
export async function cropImage(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  label: string,
  img: ImageBuffers,
  r: Rect,
  tile: GPUBuffer,
): Promise<void> {
  const [rows, cols] = [r.y1 - r.y0, r.x1 - r.x0];
  for (const { band, y0, y1 } of bandsOver(img, r)) {
    await crop(ctx, scope, prog, {
      label,
      win: { c: 3, rows: y1 - y0, cols },
      src: bandPlanes(img, band),
      y: y0 - band.y0,
      x: r.x0,
      dst: { buffer: tile, offset: (y0 - r.y0) * cols, plane: rows * cols, width: cols },
    });
  }
}

/**
 * Appends the addition of `tileGrad` ([3][rows][cols], dense) into the
 * image-sized gradient at rectangle `r`: the backward of {@link cropImage}.
 */
export async function addTileToImage(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  label: string,
  tileGrad: GPUBuffer,
  r: Rect,
  img: ImageBuffers,
): Promise<void> {
  const [rows, cols] = [r.y1 - r.y0, r.x1 - r.x0];
  for (const { band, y0, y1 } of bandsOver(img, r)) {
    await cropBackward(ctx, scope, prog, {
      label,
      win: { c: 3, rows: y1 - y0, cols },
      grad: { buffer: tileGrad, offset: (y0 - r.y0) * cols, plane: rows * cols, width: cols },
      into: bandPlanes(img, band),
      y: y0 - band.y0,
      x: r.x0,
    });
  }
}

/**
 * Staging buffers for reading an image-sized tensor back, made once (before
 * a loop, so a snapshot inside it makes no buffer): one per band.
 */
export class ImageReader {
  #staging: GPUBuffer[];
  #device: GPUDevice;

  /** @param device the device; @param like the bands' layout of the tensors to read. */
  constructor(device: GPUDevice, like: ImageBuffers) {
    this.#device = device;
    this.#staging = like.bands.map((b) =>
      device.createBuffer({
        size: 3 * b.rows * like.w * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      })
    );
  }

  /** Reads `img` (banded as the layout given) back as a [3][H][W] tensor. */
  async read(img: ImageBuffers): Promise<Float32Array> {
    const enc = this.#device.createCommandEncoder();
    img.bands.forEach((b, i) =>
      enc.copyBufferToBuffer(b.buffer, 0, this.#staging[i], 0, this.#staging[i].size)
    );
    this.#device.queue.submit([enc.finish()]);
    const parts = [];
    for (const s of this.#staging) {
      await s.mapAsync(GPUMapMode.READ);
      parts.push(new Float32Array(s.getMappedRange().slice(0)));
      s.unmap();
    }
    return joinBands(img, parts);
  }

  /** Frees the staging buffers. */
  destroy(): void {
    for (const s of this.#staging) s.destroy();
  }
}
