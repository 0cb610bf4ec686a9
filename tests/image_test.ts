/**
 * Tests for src/engine/image and src/deno/image: Pillow-exact bicubic resize (against committed Pillow
 * fixtures), reference-compatible sizing rules, the BGR tensor layout,
 * PNG/JPEG decoding with one-line UserErrors, atomic writes, contact sheets.
 */
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { concatBytes, makeChunk, PNG_SIGNATURE } from "../src/engine/image/png_text.ts";
import { UserError } from "../src/engine/errors.ts";
import {
  contactSheet,
  fitLongerSide,
  fitShorterSide,
  fromTensor,
  MEAN_BGR,
  originalColors,
  resize,
  type RgbImage,
  toTensor,
} from "../src/engine/image/mod.ts";
import { decodeImage, encodeImage, readImage, writeImage } from "../src/deno/image/mod.ts";
import { repoPath, testImage } from "./data.ts";
import { FILE_MODES_NOTE, obeyingFileModes } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/image/", import.meta.url);
const HUBBLE = testImage("hubble_deep_field.jpg");

// ---------------------------------------------------------------- helpers

/** Same patterns as tests/fixtures/image/make_resize_fixtures.py. */
function pattern(kind: string, w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  let s = 12345n, o = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (kind === "grad") {
        data[o++] = (x * 7 + y * 13) % 256;
        data[o++] = (x * x + 3 * y) % 256;
        data[o++] = ((x ^ y) * 11) % 256;
      } else {
        for (let c = 0; c < 3; c++) {
          s = (s * 1103515245n + 12345n) % 2147483648n;
          data[o++] = Number((s >> 16n) & 255n);
        }
      }
    }
  }
  return { width: w, height: h, data };
}

function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function maxAbsDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface PngSpec {
  width: number;
  height: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA (8-bit). */
  colorType: 0 | 2 | 3 | 4 | 6;
  /** Samples, row-major, channels per colour type. */
  pixels: number[];
  palette?: number[];
  trns?: number[];
}

/** A minimal 8-bit PNG encoder (filter 0 on every row). */
function makePng(spec: PngSpec): Uint8Array {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[spec.colorType];
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, spec.width);
  dv.setUint32(4, spec.height);
  ihdr.set([8, spec.colorType, 0, 0, 0], 8);
  const row = spec.width * channels;
  const raw = new Uint8Array((row + 1) * spec.height);
  for (let y = 0; y < spec.height; y++) {
    raw.set(spec.pixels.slice(y * row, (y + 1) * row), y * (row + 1) + 1);
  }
  const parts = [
    new Uint8Array(PNG_SIGNATURE),
    makeChunk("IHDR", ihdr),
  ];
  if (spec.palette) parts.push(makeChunk("PLTE", new Uint8Array(spec.palette)));
  if (spec.trns) parts.push(makeChunk("tRNS", new Uint8Array(spec.trns)));
  parts.push(
    makeChunk("IDAT", new Uint8Array(deflateSync(raw))),
    makeChunk("IEND", new Uint8Array()),
  );
  return concatBytes(parts);
}

/** Asserts that `p` rejects with a one-line UserError whose message includes `name` and `re`. */
async function assertUserError(p: Promise<unknown>, name: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected UserError, got ${e}`);
    assert.ok(!e.message.includes("\n"), `multi-line message: ${e.message}`);
    assert.ok(e.message.includes(name), `message does not name ${name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

// ---------------------------------------------------------------- resize

Deno.test("resize matches Pillow BICUBIC on committed fixtures (down, up, large factor, one axis)", async () => {
  const fx = JSON.parse(await Deno.readTextFile(new URL("resize_pil.json", FIXTURES)));
  let worst = 0;
  for (const c of fx.cases) {
    const src = pattern(c.pattern, c.in[0], c.in[1]);
    const out = resize(src, c.out[0], c.out[1]);
    assert.deepEqual([out.width, out.height], c.out);
    const d = maxAbsDiff(out.data, fromBase64(c.expected));
    assert.equal(d, 0, `${c.pattern} ${c.in} -> ${c.out}: max diff ${d}`);
    worst = Math.max(worst, d);
  }
  console.log(`  max |diff| vs Pillow ${fx.pillow} over ${fx.cases.length} cases: ${worst}`);
});

Deno.test("resize leaves its input untouched and copies when the size is unchanged", () => {
  const src = pattern("noise", 9, 5);
  const before = src.data.slice();
  const same = resize(src, 9, 5);
  assert.deepEqual(same.data, before);
  assert.notEqual(same.data, src.data);
  resize(src, 4, 3);
  assert.deepEqual(src.data, before);
  assert.throws(() => resize(src, 0, 3), RangeError);
});

Deno.test("resize of a flat colour stays that colour", () => {
  const src = { width: 13, height: 7, data: new Uint8Array(13 * 7 * 3).fill(200) };
  for (const [w, h] of [[3, 2], [40, 29], [1, 1]]) {
    assert.ok(resize(src, w, h).data.every((v) => v === 200));
  }
});

// ---------------------------------------------------------------- sizing rules

Deno.test("fitLongerSide sets the longer side and rounds half to even like Python", () => {
  assert.deepEqual(fitLongerSide(1000, 500, 511), [511, 256]); // 255.5 -> 256
  assert.deepEqual(fitLongerSide(1000, 500, 513), [513, 256]); // 256.5 -> 256
  assert.deepEqual(fitLongerSide(500, 1000, 513), [256, 513]);
  assert.deepEqual(fitLongerSide(100, 30, 5), [5, 2]); // 1.5 -> 2
  assert.deepEqual(fitLongerSide(100, 10, 5), [5, 1]); // 0.5 -> 0 -> max(1, .)
  assert.deepEqual(fitLongerSide(10, 1000, 3), [1, 3]);
  assert.deepEqual(fitLongerSide(1024, 768, 512), [512, 384]);
  assert.deepEqual(fitLongerSide(1, 1, 7), [7, 7]);
});

Deno.test("fitShorterSide matches reference.py load_image sizing", () => {
  // Expected values computed with CPython: max(1, round(side * size / min(w, h))).
  assert.deepEqual(fitShorterSide(1024, 768, 512), [683, 512]);
  assert.deepEqual(fitShorterSide(1024, 768, 256), [341, 256]);
  assert.deepEqual(fitShorterSide(768, 1024, 500), [500, 667]);
  assert.deepEqual(fitShorterSide(3, 2, 3), [4, 3]); // 4.5 -> 4
  assert.deepEqual(fitShorterSide(5, 2, 3), [8, 3]); // 7.5 -> 8
  assert.deepEqual(fitShorterSide(7, 5, 3), [4, 3]);
  assert.deepEqual(fitShorterSide(100, 30, 5), [17, 5]);
});

// ---------------------------------------------------------------- tensors

Deno.test("toTensor gives NCHW BGR with MEAN_BGR removed", () => {
  const img = { width: 2, height: 1, data: new Uint8Array([10, 20, 30, 255, 0, 128]) };
  const t = toTensor(img);
  assert.deepEqual(t.shape, [1, 3, 1, 2]);
  const f = Math.fround;
  const expected = [
    [30, 128].map((v) => f(v - f(MEAN_BGR[0]))), // B plane
    [20, 0].map((v) => f(v - f(MEAN_BGR[1]))), // G plane
    [10, 255].map((v) => f(v - f(MEAN_BGR[2]))), // R plane
  ].flat();
  assert.deepEqual(Array.from(t.data), expected);
  assert.deepEqual([...MEAN_BGR], [104.006, 116.669, 122.679]);
});

Deno.test("fromTensor inverts toTensor exactly for every byte value", () => {
  const data = new Uint8Array(256 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i % 3) * 85) % 256;
  const img = { width: 16, height: 16, data };
  assert.deepEqual(fromTensor(toTensor(img)), img);
});

Deno.test("fromTensor clamps to 0..255, rounds half to even, maps NaN to 0", () => {
  const m = MEAN_BGR.map(Math.fround);
  // One pixel per column; B plane carries the rounding cases (exact in float32).
  const b = [0.5, 1.5, 2.5, 3.5, -1000, 1000, NaN].map((v) => v - m[0]);
  const n = b.length;
  const t = { shape: [1, 3, 1, n], data: new Float32Array([...b, ...b, ...b]) };
  const out = fromTensor(t);
  const blues = Array.from({ length: n }, (_, i) => out.data[i * 3 + 2]);
  assert.deepEqual(blues, [0, 2, 2, 4, 0, 255, 0]);
  assert.throws(() => fromTensor({ shape: [3, 1, 1], data: new Float32Array(3) }), RangeError);
});

// ---------------------------------------------------------------- decoding

Deno.test("readImage decodes examples/hubble_deep_field.jpg (512x446) close to Pillow: a 16×16 grid of pixels within 3 levels, each channel's mean within 0.1", async () => {
  const fx = JSON.parse(await Deno.readTextFile(new URL("jpeg_pil.json", FIXTURES)));
  const img = await readImage(HUBBLE);
  assert.deepEqual([img.width, img.height], [fx.width, fx.height]);
  assert.equal(img.data.length, fx.width * fx.height * 3);
  const grid = new Uint8Array(16 * 16 * 3);
  for (let j = 0; j < 16; j++) {
    for (let i = 0; i < 16; i++) {
      const [y, x] = [Math.round(j * (fx.height - 1) / 15), Math.round(i * (fx.width - 1) / 15)];
      grid.set(
        img.data.subarray((y * fx.width + x) * 3, (y * fx.width + x) * 3 + 3),
        (j * 16 + i) * 3,
      );
    }
  }
  assert.ok(
    maxAbsDiff(grid, fromBase64(fx.grid)) <= 3,
    `grid: ${maxAbsDiff(grid, fromBase64(fx.grid))}`,
  );
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    for (let k = c; k < img.data.length; k += 3) sum += img.data[k];
    const mean = sum / (fx.width * fx.height);
    assert.ok(Math.abs(mean - fx.means[c]) <= 0.1, `channel ${c}: mean ${mean} vs ${fx.means[c]}`);
  }
});

const GRAY_PIX = [0, 64, 128, 255, 7, 200];
const RGB_PIX = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];

Deno.test("decodeImage reads an RGB PNG exactly", async () => {
  const png = makePng({ width: 2, height: 2, colorType: 2, pixels: RGB_PIX });
  const img = await decodeImage(png, "rgb.png");
  assert.deepEqual(img, { width: 2, height: 2, data: new Uint8Array(RGB_PIX) });
});

Deno.test("decodeImage composites an RGBA PNG on white", async () => {
  const pixels = [255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128, 100, 50, 200, 51];
  const png = makePng({ width: 4, height: 1, colorType: 6, pixels });
  const img = await decodeImage(png, "rgba.png");
  const on = (c: number, a: number) => Math.round((c * a + 255 * (255 - a)) / 255);
  const expected = [
    [255, 0, 0],
    [255, 255, 255],
    [on(0, 128), on(0, 128), 255],
    [on(100, 51), on(50, 51), on(200, 51)],
  ].flat();
  assert.deepEqual(Array.from(img.data), expected);
});

Deno.test("decodeImage expands a grayscale PNG to RGB", async () => {
  const png = makePng({ width: 3, height: 2, colorType: 0, pixels: GRAY_PIX });
  const img = await decodeImage(png, "gray.png");
  assert.deepEqual(Array.from(img.data), GRAY_PIX.flatMap((v) => [v, v, v]));
});

Deno.test("decodeImage composites a grayscale+alpha PNG on white", async () => {
  const png = makePng({ width: 3, height: 1, colorType: 4, pixels: [10, 255, 10, 0, 100, 128] });
  const img = await decodeImage(png, "gray-alpha.png");
  const mid = Math.round((100 * 128 + 255 * 127) / 255);
  assert.deepEqual(Array.from(img.data), [10, 10, 10, 255, 255, 255, mid, mid, mid]);
});

Deno.test("decodeImage maps a palette PNG through PLTE (and tRNS onto white)", async () => {
  const palette = [255, 0, 0, 0, 128, 0, 1, 2, 3];
  const plain = makePng({ width: 3, height: 1, colorType: 3, pixels: [2, 0, 1], palette });
  assert.deepEqual(
    Array.from((await decodeImage(plain, "pal.png")).data),
    [1, 2, 3, 255, 0, 0, 0, 128, 0],
  );
  const trns = makePng({
    width: 3,
    height: 1,
    colorType: 3,
    pixels: [2, 0, 1],
    palette,
    trns: [0],
  });
  assert.deepEqual(
    Array.from((await decodeImage(trns, "pal-trns.png")).data),
    [1, 2, 3, 255, 255, 255, 0, 128, 0],
  );
});

// ---------------------------------------------------------------- bad inputs

Deno.test("readImage: missing file and directory are UserErrors naming the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertUserError(readImage(`${dir}/nope.png`), `${dir}/nope.png`, /no such file/);
    await assertUserError(readImage(dir), dir, /directory|cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readImage: zero-byte file is a UserError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/empty.jpg`, new Uint8Array());
    await assertUserError(readImage(`${dir}/empty.jpg`), "empty.jpg", /empty/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readImage: a text file is 'not a PNG or JPEG image'", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/notes.png`, "hello, I am not a picture\n");
    await assertUserError(readImage(`${dir}/notes.png`), "notes.png", /not a PNG or JPEG/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodeImage: truncated JPEG is a UserError", async () => {
  const jpeg = await encodeImage(pattern("noise", 64, 48), "jpeg", 90);
  assert.ok((await decodeImage(jpeg, "ok.jpg")).width === 64);
  for (const cut of [jpeg.length - 2, Math.floor(jpeg.length / 2), 200, 20, 4]) {
    await assertUserError(decodeImage(jpeg.slice(0, cut), "cut.jpg"), "cut.jpg", /JPEG/);
  }
});

Deno.test("readImage: a committed JPEG cut in half is a UserError", async () => {
  const bytes = await Deno.readFile(HUBBLE);
  await assertUserError(decodeImage(bytes.slice(0, bytes.length >> 1), "t.jpg"), "t.jpg", /JPEG/);
});

Deno.test("decodeImage: truncated and corrupt PNGs are UserErrors", async () => {
  const png = makePng({
    width: 40,
    height: 30,
    colorType: 2,
    pixels: [...pattern("noise", 40, 30).data],
  });
  // Like PIL, a PNG whose pixel data is complete but lacks IEND is accepted.
  for (const cut of [png.length - 30, Math.floor(png.length / 2), 30, 12]) {
    await assertUserError(decodeImage(png.slice(0, cut), "cut.png"), "cut.png", /PNG/);
  }
  const corrupt = png.slice();
  corrupt.fill(0x5a, 60, 90); // garble compressed data
  await assertUserError(decodeImage(corrupt, "bad.png"), "bad.png", /PNG/);
});

Deno.test("decodeImage refuses a header claiming 100000x100000 before decoding", async () => {
  const png = makePng({ width: 1, height: 1, colorType: 0, pixels: [0] });
  new DataView(png.buffer).setUint32(16, 100000);
  new DataView(png.buffer).setUint32(20, 100000);
  await assertUserError(decodeImage(png, "huge.png"), "huge.png", /100000x100000.*limit/);
  const jpeg = await encodeImage(pattern("grad", 8, 8), "jpeg");
  const sof = jpeg.findIndex((v, i) => v === 0xff && jpeg[i + 1] === 0xc0);
  assert.ok(sof > 0);
  new DataView(jpeg.buffer).setUint16(sof + 5, 60000);
  new DataView(jpeg.buffer).setUint16(sof + 7, 60000);
  await assertUserError(decodeImage(jpeg, "huge.jpg"), "huge.jpg", /60000x60000.*limit/);
});

Deno.test("readImage honours the maxPixels option", async () => {
  const png = makePng({ width: 10, height: 10, colorType: 0, pixels: new Array(100).fill(9) });
  await assertUserError(decodeImage(png, "p.png", { maxPixels: 99 }), "p.png", /limit of 99/);
  assert.equal((await decodeImage(png, "p.png", { maxPixels: 100 })).width, 10);
});

// ---------------------------------------------------------------- writing

Deno.test("writeImage round-trips PNG exactly and JPEG closely, leaving no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const img = pattern("grad", 37, 23);
    await writeImage(`${dir}/out.png`, img);
    assert.deepEqual(await readImage(`${dir}/out.png`), img);
    const smooth = resize(resize(pattern("grad", 37, 23), 8, 5), 64, 40);
    await writeImage(`${dir}/out.JPEG`, smooth);
    await writeImage(`${dir}/out.jpg`, smooth);
    const back = await readImage(`${dir}/out.jpg`);
    assert.deepEqual([back.width, back.height], [64, 40]);
    let sum = 0;
    for (let i = 0; i < back.data.length; i++) sum += Math.abs(back.data[i] - smooth.data[i]);
    assert.ok(sum / back.data.length < 4, `mean JPEG error ${sum / back.data.length}`);
    await writeImage(`${dir}/out.png`, smooth); // overwrite in place
    assert.deepEqual(await readImage(`${dir}/out.png`), smooth);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["out.JPEG", "out.jpg", "out.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeImage: unwritable or missing directory is a UserError and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  const img = pattern("grad", 4, 4);
  try {
    await assertUserError(
      writeImage(`${dir}/missing/out.png`, img),
      `${dir}/missing/out.png`,
      /cannot write/,
    );
    await Deno.writeTextFile(`${dir}/file`, "x");
    await assertUserError(
      writeImage(`${dir}/file/out.png`, img),
      `${dir}/file/out.png`,
      /cannot write/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["file"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(`writeImage: a read-only directory is a UserError and writes nothing${FILE_MODES_NOTE}`, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/ro`);
    await Deno.chmod(`${dir}/ro`, 0o555);
    // In a child process, which root runs without the right to ignore the directory's mode.
    const script = `${dir}/write.ts`;
    await Deno.writeTextFile(
      script,
      `import { writeImage } from ${
        JSON.stringify(new URL("../src/deno/image/mod.ts", import.meta.url).href)
      };
try {
  await writeImage(${
        JSON.stringify(`${dir}/ro/out.png`)
      }, { width: 4, height: 4, data: new Uint8Array(48) });
  console.log(JSON.stringify({ wrote: true }));
} catch (e) {
  console.log(JSON.stringify({ name: e.constructor.name, message: e.message }));
}
`,
    );
    const [cmd, ...args] = obeyingFileModes([
      Deno.execPath(),
      "run",
      "--config",
      repoPath("deno.json"),
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-ffi",
      script,
    ]);
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const got = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(got.name, "UserError", JSON.stringify(got));
    assert.ok(!got.message.includes("\n"), got.message);
    assert.ok(got.message.includes(`${dir}/ro/out.png`), got.message);
    assert.match(got.message, /cannot write/);
    assert.deepEqual([...Deno.readDirSync(`${dir}/ro`)], []);
  } finally {
    await Deno.chmod(`${dir}/ro`, 0o755).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeImage: unsupported extension is a UserError and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["out.gif", "out", "out.png.txt"]) {
      await assertUserError(writeImage(`${dir}/${name}`, pattern("grad", 2, 2)), name, /extension/);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- contact sheet

Deno.test("contactSheet scales tiles to one height, side by side on white with gaps", () => {
  const a = pattern("grad", 37, 23), b = pattern("noise", 10, 20);
  const sheet = contactSheet([a, b], 10, 2);
  const wa = Math.round(37 * 10 / 23), wb = 5;
  assert.deepEqual([sheet.width, sheet.height], [2 + wa + 2 + wb + 2, 14]);
  const px = (x: number, y: number) =>
    Array.from(sheet.data.subarray((y * sheet.width + x) * 3, (y * sheet.width + x) * 3 + 3));
  for (
    const [x, y] of [[0, 0], [1, 5], [2 + wa, 5], [2 + wa + 1, 7], [sheet.width - 1, 13], [5, 0], [
      5,
      13,
    ]]
  ) {
    assert.deepEqual(px(x, y), [255, 255, 255], `gap pixel ${x},${y}`);
  }
  const ra = resize(a, wa, 10), rb = resize(b, wb, 10);
  assert.deepEqual(px(2, 2), Array.from(ra.data.subarray(0, 3)));
  assert.deepEqual(
    px(2 + wa + 2 + wb - 1, 11),
    Array.from(rb.data.subarray((9 * wb + wb - 1) * 3, (9 * wb + wb) * 3)),
  );
  assert.throws(() => contactSheet([], 10), RangeError);
});

// ---------------------------------------------------------------- colours

/** Seeded LCG noise, as tests/oracle/oracle.py makes it for colors_reference.json. */
function noiseImage(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  let s = BigInt(seed);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245n + 12345n) % 2147483648n;
    data[i] = Number((s >> 16n) & 255n);
  }
  return { width: w, height: h, data };
}

Deno.test("originalColors equals the oracle's original_colors within one level (colors_reference.json, made by tests/oracle/oracle.py)", async () => {
  const fx = JSON.parse(await Deno.readTextFile(new URL("colors_reference.json", FIXTURES)));
  const [a, b] = fx.seeds.map((s: number) => noiseImage(fx.width, fx.height, s));
  const got = originalColors(a, b);
  const want = fromBase64(fx.expected);
  assert.ok(maxAbsDiff(got.data, want) <= 1, `max diff ${maxAbsDiff(got.data, want)}`);
  // Not a copy of either input: the luminance of one, the colours of the other.
  assert.ok(maxAbsDiff(got.data, a.data) > 16 && maxAbsDiff(got.data, b.data) > 16);
});

Deno.test("originalColors of an image with itself gives the image back within one level", () => {
  const a = noiseImage(31, 9, 7);
  assert.ok(maxAbsDiff(originalColors(a, a).data, a.data) <= 1);
});
