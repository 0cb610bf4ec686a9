/**
 * Transparency, the same on every platform: decoded RGBA flattened onto
 * white, so the Deno edge (ImageScript) and the browser's own decoders give
 * the network the same pixels.
 * @module
 */

/**
 * Flattens straight (not premultiplied) RGBA onto a white background:
 * `c·a/255 + 255·(1 − a/255)`, rounded; opaque pixels keep their values.
 * @param rgba `pixels * 4` bytes, R, G, B, A of each pixel
 * @param pixels number of pixels
 * @returns `pixels * 3` bytes, R, G, B of each pixel
 */
export function rgbaToRgbOnWhite(rgba: Uint8Array | Uint8ClampedArray, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const a = rgba[i * 4 + 3], inv = 255 - a;
    for (let c = 0; c < 3; c++) {
      const v = rgba[i * 4 + c];
      out[i * 3 + c] = a === 255 ? v : Math.floor((v * a + 255 * inv + 127) / 255);
    }
  }
  return out;
}
