/**
 * A mask as a PNG file: 8-bit grayscale (colour type 0), opaque, its bytes
 * built from the mask's own buffer (no canvas: no premultiplied alpha, no
 * colour management), so the CLI's `--style-masks` reads exactly the painted
 * values (a gray pixel's luminance is itself). Deflate is the platform's
 * `CompressionStream` (browsers, Deno).
 * @module
 */
import { concatBytes, makeChunk as chunk, PNG_SIGNATURE } from "../engine/image/png_text.ts";
import type { Mask } from "./brush.ts";

/** `bytes` in the zlib format (PNG's IDAT). */
async function zlib(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The mask as an 8-bit grayscale PNG file. */
export async function maskPng(mask: Mask): Promise<Uint8Array> {
  const { width, height, data } = mask;
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8 bits, grayscale, deflate, no filter method, no interlace
  // Each row: filter type 0 (none), then its bytes.
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw.set(data.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  return concatBytes([
    new Uint8Array(PNG_SIGNATURE),
    chunk("IHDR", header),
    chunk("IDAT", await zlib(raw)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}
