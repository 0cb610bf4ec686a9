/**
 * EXIF orientation in the CLI's decoding: a JPEG is turned upright by its
 * Orientation tag as browsers show it (the page's side: tools/web/
 * orientation_test.ts compares the two decoders on the same files).
 * @module
 */
import assert from "node:assert/strict";
import { decodeImage, encodeImage } from "../src/deno/image/mod.ts";
import { jpegOrientation } from "../src/deno/image/header.ts";
import { applyOrientation } from "../src/engine/image/orient.ts";
import { asymmetric, uprightByDefinition, withOrientation } from "./exif_jpeg.ts";

Deno.test("applyOrientation: each EXIF orientation is its definition's mirror, flip and turn", () => {
  const img = asymmetric(5, 3);
  for (let o = 1; o <= 8; o++) {
    assert.deepEqual(applyOrientation(img, o), uprightByDefinition(img, o), `orientation ${o}`);
  }
  // The eight are different images (so a wrong one cannot pass).
  const seen = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((o) => applyOrientation(img, o).data.join()));
  assert.equal(seen.size, 8);
});

Deno.test("applyOrientation: values outside 2–8 leave the image as stored", () => {
  const img = asymmetric(5, 3);
  for (const o of [0, 1, 9, 255, 1.5]) assert.equal(applyOrientation(img, o), img);
});

Deno.test("jpegOrientation reads the tag in either byte order, 1 without Exif", async () => {
  const jpeg = await encodeImage(asymmetric(), "jpeg", 95);
  assert.equal(jpegOrientation(jpeg), 1);
  for (const o of [1, 3, 6, 8]) {
    assert.equal(jpegOrientation(withOrientation(jpeg, o, true)), o);
    assert.equal(jpegOrientation(withOrientation(jpeg, o, false)), o);
  }
});

Deno.test("decodeImage: an EXIF-rotated JPEG decodes upright (orientations 2–8)", async () => {
  const jpeg = await encodeImage(asymmetric(), "jpeg", 95);
  const stored = await decodeImage(jpeg, "plain.jpg");
  for (let o = 2; o <= 8; o++) {
    const got = await decodeImage(withOrientation(jpeg, o, o % 2 === 0), `o${o}.jpg`);
    assert.deepEqual(got, uprightByDefinition(stored, o), `orientation ${o}`);
    assert.deepEqual([got.width, got.height], o >= 5 ? [32, 48] : [48, 32]);
  }
});
