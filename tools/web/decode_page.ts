/**
 * A test page's entry, bundled beside the page: `decodeForTest(base64)`
 * decodes image bytes with the page's own decoder (src/web/decode.ts, the
 * browser's `createImageBitmap`) and returns the RGB pixels, base64.
 * @module
 */
import { decodeImageFile } from "../../src/web/decode.ts";

/** Base64 → bytes. */
function fromBase64(s: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** Bytes → base64. */
function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return btoa(s);
}

/** Decodes `bytes` (base64) as the page does. */
async function decodeForTest(
  bytes: string,
  type: string,
): Promise<{ width: number; height: number; data: string }> {
  const img = await decodeImageFile(new Blob([fromBase64(bytes)], { type }), "test");
  return { width: img.width, height: img.height, data: toBase64(img.data) };
}

(globalThis as unknown as { decodeForTest: typeof decodeForTest }).decodeForTest = decodeForTest;
