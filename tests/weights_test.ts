// Tests of the MAT-file reader and the SqueezeNet weights module.
// Run: deno test -A tests/weights_test.ts
// The real weights are found by tests/data.ts (the CLI's resolver, $STYLIZE_WEIGHTS or the shared
// copy as a local mirror).

import assert from "node:assert/strict";
import { join } from "node:path";
import { UserError } from "../src/engine/errors.ts";
import { type MatValue, parseMat } from "../src/engine/model/mat.ts";
import {
  type ConvWeights,
  LAYER_NAMES,
  parseSqueezeNet,
  sha256Hex,
  WEIGHTS_SHA256,
  WEIGHTS_SIZE,
  WEIGHTS_URL,
} from "../src/engine/model/weights.ts";
import { loadWeights, resolveWeights, weightsCacheDir } from "../src/deno/weights_file.ts";
import { weightsPath } from "./data.ts";

// ---------------------------------------------------------------------------
// Shared data

const WEIGHTS = await weightsPath();

let bytesCache: Uint8Array | undefined;
/** The real file's bytes. */
async function realBytes(): Promise<Uint8Array> {
  return bytesCache ??= await Deno.readFile(WEIGHTS);
}

/** Expected SqueezeNet 1.1 shapes, written out independently of the module's table. */
const EXPECTED_SHAPES: Record<string, [number, number, number, number]> = {
  "conv1": [3, 3, 3, 64],
};
for (
  const [fire, cin, s, e] of [
    ["fire2", 64, 16, 64],
    ["fire3", 128, 16, 64],
    ["fire4", 128, 32, 128],
    ["fire5", 256, 32, 128],
    ["fire6", 256, 48, 192],
    ["fire7", 384, 48, 192],
    ["fire8", 384, 64, 256],
    ["fire9", 512, 64, 256],
  ] as const
) {
  EXPECTED_SHAPES[`${fire}/squeeze1x1`] = [1, 1, cin, s];
  EXPECTED_SHAPES[`${fire}/expand1x1`] = [1, 1, s, e];
  EXPECTED_SHAPES[`${fire}/expand3x3`] = [3, 3, s, e];
}

function hwio(w: ConvWeights, a: number, b: number, c: number, d: number): number {
  return w.kernel[((a * w.kw + b) * w.cin + c) * w.cout + d];
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

function u32le(...words: number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const v = new DataView(out.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w, true));
  return out;
}

/**
 * Finds a variable's kernel and bias data in the raw file without the parser:
 * the name element (miINT8 tag + name), then the first miSINGLE tags of the
 * kernel's and the bias's byte sizes after it.
 */
function locateRaw(
  bytes: Uint8Array,
  name: string,
  shape: [number, number, number, number],
): { kernel: Float32Array; bias: Float32Array } {
  const nameBytes = new TextEncoder().encode(name);
  const nameTag = new Uint8Array([...u32le(1, nameBytes.length), ...nameBytes]);
  const at = indexOf(bytes, nameTag, 128);
  assert.ok(at > 0, `variable ${name} not found in the raw file`);
  const count = shape[0] * shape[1] * shape[2] * shape[3];
  const k = indexOf(bytes, u32le(7, count * 4), at);
  assert.ok(k > 0, `kernel data of ${name} not found`);
  const b = indexOf(bytes, u32le(7, shape[3] * 4), k + 8 + count * 4);
  assert.ok(b > 0, `bias data of ${name} not found`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = (start: number, n: number) =>
    Float32Array.from({ length: n }, (_, i) => view.getFloat32(start + 8 + i * 4, true));
  return { kernel: read(k, count), bias: read(b, shape[3]) };
}

function sum(values: Float32Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function assertClose(actual: number, expected: number, tol: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

// ---------------------------------------------------------------------------
// The real file

Deno.test("the test weights (sqz_notop.mat) have the pinned size and sha256", async () => {
  const bytes = await realBytes();
  assert.equal(bytes.length, WEIGHTS_SIZE);
  assert.equal(await sha256Hex(bytes), WEIGHTS_SHA256);
});

Deno.test("parseMat reads all 25 variables of sqz_notop.mat as 1x2 cells {kernel, bias}", async () => {
  const vars = parseMat(await realBytes());
  assert.deepEqual([...vars.keys()].sort(), [...LAYER_NAMES].sort());
  let params = 0;
  for (const [name, v] of vars) {
    assert.equal(v.kind, "cell", name);
    if (v.kind !== "cell") continue;
    assert.deepEqual(v.dims, [1, 2], name);
    const [k, b] = v.items;
    assert.ok(k.kind === "numeric" && b.kind === "numeric", name);
    assert.deepEqual(k.dims, EXPECTED_SHAPES[name], name);
    assert.deepEqual(b.dims, [1, EXPECTED_SHAPES[name][3]], name);
    params += k.data.length + b.data.length;
  }
  assert.equal(params, 722496);
});

Deno.test("LAYER_NAMES lists conv1 then squeeze1x1, expand1x1, expand3x3 of fire2..fire9", () => {
  assert.equal(LAYER_NAMES.length, 25);
  assert.deepEqual(LAYER_NAMES, Object.keys(EXPECTED_SHAPES));
});

Deno.test("parseSqueezeNet gives every layer its SqueezeNet 1.1 shape", async () => {
  const layers = parseSqueezeNet(await realBytes(), WEIGHTS);
  assert.deepEqual([...layers.keys()], LAYER_NAMES);
  for (const [name, [kh, kw, cin, cout]] of Object.entries(EXPECTED_SHAPES)) {
    const w = layers.get(name)!;
    assert.equal(w.name, name);
    assert.deepEqual([w.kh, w.kw, w.cin, w.cout], [kh, kw, cin, cout], name);
    assert.equal(w.kernel.length, kh * kw * cin * cout, name);
    assert.equal(w.bias.length, cout, name);
    assert.ok(w.kernel.every(Number.isFinite) && w.bias.every(Number.isFinite), name);
  }
});

Deno.test("parseSqueezeNet kernels are row-major HWIO transposes of the raw column-major bytes", async () => {
  const bytes = await realBytes();
  const layers = parseSqueezeNet(bytes, WEIGHTS);
  for (const name of ["conv1", "fire2/expand3x3", "fire5/squeeze1x1", "fire9/expand3x3"]) {
    const shape = EXPECTED_SHAPES[name];
    const [kh, kw, cin, cout] = shape;
    const raw = locateRaw(bytes, name, shape);
    const w = layers.get(name)!;
    // Every element: raw (a,b,c,d) at a + kh*(b + kw*(c + cin*d)).
    for (let d = 0; d < cout; d++) {
      for (let c = 0; c < cin; c++) {
        for (let b = 0; b < kw; b++) {
          for (let a = 0; a < kh; a++) {
            const expected = raw.kernel[a + kh * (b + kw * (c + cin * d))];
            if (hwio(w, a, b, c, d) !== expected) {
              assert.fail(`${name}[${a},${b},${c},${d}]: ${hwio(w, a, b, c, d)} != ${expected}`);
            }
          }
        }
      }
    }
    assert.deepEqual(w.bias, raw.bias, name);
    assertClose(sum(w.kernel), sum(raw.kernel), 1e-9, `${name} kernel sum`);
  }
});

Deno.test("parseSqueezeNet values match constants derived with scipy.io.loadmat", async () => {
  // Derived once with /usr/bin/python3 scipy.io.loadmat; numpy indexes (kh, kw, in, out).
  const layers = parseSqueezeNet(await realBytes(), WEIGHTS);
  const conv1 = layers.get("conv1")!;
  assertClose(sum(conv1.kernel), -2.9973132426930533, 1e-9, "conv1 kernel sum");
  assertClose(sum(conv1.bias), 2.0016083255177364, 1e-9, "conv1 bias sum");
  assert.equal(hwio(conv1, 0, 0, 0, 0), Math.fround(0.2572346329689026));
  assert.equal(hwio(conv1, 2, 1, 0, 5), Math.fround(0.17255933582782745));
  assert.equal(hwio(conv1, 1, 2, 2, 63), Math.fround(-0.21725350618362427));
  assert.equal(hwio(conv1, 0, 2, 1, 17), Math.fround(0.3017278015613556));
  const f9 = layers.get("fire9/expand3x3")!;
  assertClose(sum(f9.kernel), -855.1462849080947, 1e-6, "fire9/expand3x3 kernel sum");
  assertClose(sum(f9.bias), 1.9432935516488214, 1e-9, "fire9/expand3x3 bias sum");
  assert.equal(hwio(f9, 2, 0, 63, 255), Math.fround(-0.017251405864953995));
  assert.equal(hwio(f9, 1, 2, 40, 7), Math.fround(-0.03136554732918739));
});

Deno.test("loadWeights reads the real file", async () => {
  const layers = await loadWeights(WEIGHTS);
  assert.equal(layers.size, 25);
});

Deno.test("loadWeights on a missing file throws a one-line UserError naming the path", async () => {
  const path = join(await Deno.makeTempDir(), "nope.mat");
  const err = await rejectsUser(loadWeights(path));
  assertOneLineMentioning(err, [path, "--weights"]);
});

Deno.test("parseMat rejects the real file truncated anywhere with a UserError, never a RangeError", async () => {
  const bytes = await realBytes();
  // (A cut at exactly 128 bytes is a valid, empty MAT-file.)
  const cuts = [0, 10, 127, 131, 136, 150, 200, 300, 37000, WEIGHTS_SIZE - 1000];
  for (let i = 1; i <= 24; i++) cuts.push(WEIGHTS_SIZE - i);
  for (const cut of cuts) {
    assert.throws(() => parseMat(bytes.subarray(0, cut)), UserError, `cut at ${cut}`);
  }
});

// ---------------------------------------------------------------------------
// Synthetic MAT-files

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9 };
const MX = { CELL: 1, STRUCT: 2, CHAR: 4, SPARSE: 5, DOUBLE: 6, SINGLE: 7 };
const MI_MATRIX = 14;
const MI_COMPRESSED = 15;

/** A tiny MAT-file writer: enough to build test files in either byte order. */
class MatWriter {
  constructor(readonly le = true) {}

  header(): Uint8Array {
    const h = new Uint8Array(128).fill(0x20);
    h.set(new TextEncoder().encode("MATLAB 5.0 MAT-file, written by weights_test.ts"));
    h.fill(0, 116, 124); // subsystem data offset
    new DataView(h.buffer).setUint16(124, 0x0100, this.le);
    new DataView(h.buffer).setUint16(126, 0x4d49, this.le); // "IM" when little endian
    return h;
  }

  /** A data element; `small` uses the 4-byte small format (data ≤ 4 bytes). */
  element(type: number, data: Uint8Array, small = data.length <= 4 && data.length > 0): Uint8Array {
    if (small) {
      const out = new Uint8Array(8);
      new DataView(out.buffer).setUint32(0, (data.length << 16) | type, this.le);
      out.set(data, 4);
      return out;
    }
    const padded = Math.ceil(data.length / 8) * 8;
    const out = new Uint8Array(8 + padded);
    const v = new DataView(out.buffer);
    v.setUint32(0, type, this.le);
    v.setUint32(4, data.length, this.le);
    out.set(data, 8);
    return out;
  }

  values(type: number, values: number[]): Uint8Array {
    const size = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8 }[type]!;
    const out = new Uint8Array(values.length * size);
    const v = new DataView(out.buffer);
    values.forEach((x, i) => {
      const p = i * size;
      switch (type) {
        case MI.INT8:
          return v.setInt8(p, x);
        case MI.UINT8:
          return v.setUint8(p, x);
        case MI.INT16:
          return v.setInt16(p, x, this.le);
        case MI.UINT16:
          return v.setUint16(p, x, this.le);
        case MI.INT32:
          return v.setInt32(p, x, this.le);
        case MI.UINT32:
          return v.setUint32(p, x, this.le);
        case MI.SINGLE:
          return v.setFloat32(p, x, this.le);
        case MI.DOUBLE:
          return v.setFloat64(p, x, this.le);
      }
    });
    return out;
  }

  /** A miMATRIX element from its array flags, dims, name and remaining sub-elements. */
  matrix(cls: number, dims: number[], name: string, rest: Uint8Array[], flags = 0): Uint8Array {
    return this.element(
      MI_MATRIX,
      concat([
        this.element(MI.UINT32, this.values(MI.UINT32, [cls | flags, 0]), false),
        this.element(MI.INT32, this.values(MI.INT32, dims)),
        this.element(MI.INT8, new TextEncoder().encode(name)),
        ...rest,
      ]),
      false,
    );
  }

  numeric(
    name: string,
    dims: number[],
    values: number[],
    storage = MI.SINGLE,
    cls = MX.SINGLE,
  ): Uint8Array {
    return this.matrix(cls, dims, name, [this.element(storage, this.values(storage, values))]);
  }

  cell(name: string, dims: number[], items: Uint8Array[]): Uint8Array {
    return this.matrix(MX.CELL, dims, name, items);
  }

  file(...vars: Uint8Array[]): Uint8Array {
    return concat([this.header(), ...vars]);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function numeric(v: MatValue | undefined): { dims: number[]; data: number[] } {
  assert.ok(v && v.kind === "numeric", "expected a numeric value");
  return { dims: v.dims, data: [...v.data] };
}

function throwsUser(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    return err;
  }
  return assert.fail("expected a UserError, nothing was thrown");
}

async function rejectsUser(promise: Promise<unknown>): Promise<UserError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    return err;
  }
  return assert.fail("expected a UserError, nothing was thrown");
}

function assertOneLineMentioning(err: Error, words: string[]) {
  assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
  assert.ok(!err.message.includes("\n"), `message is not one line: ${err.message}`);
  for (const w of words) {
    assert.ok(err.message.includes(w), `message should mention ${w}: ${err.message}`);
  }
}

Deno.test("parseMat reads small data elements, 8-byte padding and storage narrower than the class", () => {
  const w = new MatWriter();
  const bytes = w.file(
    // name "ab" and data (3 × miUINT8 = 3 bytes) both in the small element format
    w.numeric("ab", [1, 3], [1, 2, 255], MI.UINT8, MX.SINGLE),
    // 5 × miINT16 = 10 bytes: padded to 16
    w.numeric("int16", [5, 1], [-3, 0, 7, 32767, -32768], MI.INT16, MX.DOUBLE),
    // 3 × miDOUBLE = 24 bytes: no padding; double class converted to float32
    w.numeric("double_var", [1, 3], [0.1, -2.5, 1e10], MI.DOUBLE, MX.DOUBLE),
    // a single float in the small format
    w.numeric("one", [1, 1], [1.5], MI.SINGLE),
    // 3 × miSINGLE = 12 bytes: padded to 16; column-major 2x... dims
    w.numeric("m", [3, 1], [1.25, -4, 8], MI.SINGLE),
    w.numeric("u32", [1, 2], [4000000000, 1], MI.UINT32, MX.DOUBLE),
  );
  // The first element really uses the small format for its name.
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(128 + 8 + 16 + 16, true), (2 << 16) | MI.INT8);
  const vars = parseMat(bytes);
  assert.deepEqual([...vars.keys()], ["ab", "int16", "double_var", "one", "m", "u32"]);
  assert.deepEqual(numeric(vars.get("ab")), { dims: [1, 3], data: [1, 2, 255] });
  assert.deepEqual(numeric(vars.get("int16")), {
    dims: [5, 1],
    data: [-3, 0, 7, 32767, -32768],
  });
  assert.deepEqual(numeric(vars.get("double_var")), {
    dims: [1, 3],
    data: [Math.fround(0.1), -2.5, Math.fround(1e10)],
  });
  assert.deepEqual(numeric(vars.get("one")), { dims: [1, 1], data: [1.5] });
  assert.deepEqual(numeric(vars.get("m")), { dims: [3, 1], data: [1.25, -4, 8] });
  assert.deepEqual(numeric(vars.get("u32")), { dims: [1, 2], data: [4000000000, 1] });
});

Deno.test("parseMat reads nested cell arrays, empty cells and 3-D dims in stored order", () => {
  const w = new MatWriter();
  const bytes = w.file(
    w.cell("c", [1, 3], [
      w.numeric("", [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]),
      w.cell("", [1, 1], [w.numeric("", [1, 1], [9], MI.INT8)]),
      w.element(MI_MATRIX, new Uint8Array(0), false), // an empty cell element
    ]),
  );
  const c = parseMat(bytes).get("c");
  assert.ok(c?.kind === "cell");
  assert.deepEqual(c.dims, [1, 3]);
  assert.deepEqual(numeric(c.items[0]), { dims: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] });
  const inner = c.items[1];
  assert.ok(inner.kind === "cell");
  assert.deepEqual(numeric(inner.items[0]), { dims: [1, 1], data: [9] });
  assert.deepEqual(numeric(c.items[2]), { dims: [0, 0], data: [] });
});

Deno.test("parseMat reads big-endian (MI) files the same as little-endian ones", () => {
  const make = (w: MatWriter) =>
    w.file(
      w.cell("layer", [1, 2], [
        w.numeric("", [2, 3], [1, 2, 3, 4, 5, -6.5]),
        w.numeric("", [1, 2], [300, -2], MI.INT16, MX.DOUBLE),
      ]),
    );
  const be = make(new MatWriter(false));
  assert.equal(String.fromCharCode(be[126], be[127]), "MI");
  assert.deepEqual(parseMat(be), parseMat(make(new MatWriter(true))));
  const layer = parseMat(be).get("layer");
  assert.ok(layer?.kind === "cell");
  assert.deepEqual(numeric(layer.items[0]).data, [1, 2, 3, 4, 5, -6.5]);
  assert.deepEqual(numeric(layer.items[1]).data, [300, -2]);
});

Deno.test("parseMat rejects a compressed (miCOMPRESSED) variable with a UserError mentioning compressed", () => {
  const w = new MatWriter();
  const fake = new Uint8Array([0x78, 0x9c, 1, 2, 3, 4, 5]);
  const tag = u32le(MI_COMPRESSED, fake.length);
  const bytes = concat([w.header(), tag, fake]);
  const err = throwsUser(() => parseMat(bytes));
  assertOneLineMentioning(err, ["compressed"]);
});

Deno.test("parseMat rejects a synthetic file truncated at every length with a UserError", () => {
  const w = new MatWriter();
  const bytes = w.file(
    w.cell("conv", [1, 2], [
      w.numeric("", [2, 2], [1, 2, 3, 4]),
      w.numeric("", [1, 2], [5, 6]),
    ]),
    w.numeric("x", [1, 3], [1, 2, 3], MI.DOUBLE, MX.DOUBLE),
  );
  const conv = w.cell("conv", [1, 2], [
    w.numeric("", [2, 2], [1, 2, 3, 4]),
    w.numeric("", [1, 2], [5, 6]),
  ]);
  assert.equal(parseMat(bytes).size, 2); // the whole file is fine
  // Only cuts exactly between elements are well-formed (shorter) MAT-files.
  const boundaries = new Map([[128, 0], [128 + conv.length, 1], [bytes.length, 2]]);
  for (let len = 0; len < bytes.length; len++) {
    const cut = bytes.subarray(0, len);
    if (boundaries.has(len)) {
      assert.equal(parseMat(cut).size, boundaries.get(len), `length ${len}`);
    } else {
      const err = throwsUser(() => parseMat(cut));
      assert.ok(!err.message.includes("\n"), err.message);
    }
  }
});

Deno.test("parseMat rejects struct, char, sparse and complex arrays naming what it found", () => {
  const w = new MatWriter();
  const cases: [Uint8Array, string][] = [
    [w.matrix(MX.STRUCT, [1, 1], "s", []), "struct"],
    [
      w.matrix(MX.CHAR, [1, 2], "txt", [w.element(MI.UINT16, w.values(MI.UINT16, [104, 105]))]),
      "char",
    ],
    [w.matrix(MX.SPARSE, [2, 2], "sp", []), "sparse"],
    [
      w.matrix(MX.SINGLE, [1, 1], "z", [
        w.element(MI.SINGLE, w.values(MI.SINGLE, [1])),
        w.element(MI.SINGLE, w.values(MI.SINGLE, [2])),
      ], 0x0800),
      "complex",
    ],
  ];
  for (const [variable, word] of cases) {
    const err = throwsUser(() => parseMat(w.file(variable)));
    assertOneLineMentioning(err, [word]);
  }
});

Deno.test("parseMat rejects files that are not Level 5 MAT-files", () => {
  const w = new MatWriter();
  const good = w.file(w.numeric("x", [1, 1], [1]));
  const notMat = new TextEncoder().encode("<html>404 Not Found</html>".padEnd(200, " "));
  assertOneLineMentioning(throwsUser(() => parseMat(notMat)), [
    "MAT-file",
  ]);
  const badVersion = good.slice();
  badVersion[124] = 0x00;
  badVersion[125] = 0x02;
  assertOneLineMentioning(throwsUser(() => parseMat(badVersion)), [
    "version",
  ]);
  const badEndian = good.slice();
  badEndian[126] = 0x41;
  assertOneLineMentioning(throwsUser(() => parseMat(badEndian)), [
    "endian",
  ]);
  // A numeric array whose data does not match its dims.
  const mismatched = w.file(
    w.matrix(MX.SINGLE, [2, 2], "x", [w.element(MI.SINGLE, w.values(MI.SINGLE, [1, 2, 3]))]),
  );
  assertOneLineMentioning(throwsUser(() => parseMat(mismatched)), [
    "2x2",
  ]);
});

/** A synthetic SqueezeNet 1.1 file; kernel values are their column-major index. */
function syntheticSqueezeNet(
  override: Record<string, [number, number, number, number] | null> = {},
): Uint8Array {
  const w = new MatWriter();
  const vars: Uint8Array[] = [];
  for (const [name, expected] of Object.entries(EXPECTED_SHAPES)) {
    const shape = name in override ? override[name] : expected;
    if (shape === null) continue;
    const n = shape[0] * shape[1] * shape[2] * shape[3];
    vars.push(w.cell(name, [1, 2], [
      w.numeric("", shape, Array.from({ length: n }, (_, i) => i)),
      w.numeric("", [1, shape[3]], Array.from({ length: shape[3] }, (_, i) => 100 + i)),
    ]));
  }
  return w.file(...vars);
}

Deno.test("parseSqueezeNet maps column-major (a,b,c,d) to row-major [kh][kw][cin][cout]", () => {
  const layers = parseSqueezeNet(syntheticSqueezeNet(), "synthetic.mat");
  for (const name of ["conv1", "fire4/expand3x3", "fire9/squeeze1x1"]) {
    const w = layers.get(name)!;
    const { kh, kw, cin, cout } = w;
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        for (let c = 0; c < cin; c++) {
          for (let d = 0; d < cout; d++) {
            const expected = a + kh * (b + kw * (c + cin * d));
            if (hwio(w, a, b, c, d) !== expected) assert.fail(`${name}[${a},${b},${c},${d}]`);
          }
        }
      }
    }
    assert.deepEqual([...w.bias], Array.from({ length: cout }, (_, i) => 100 + i));
  }
});

Deno.test("parseSqueezeNet names the layer whose shape is wrong", () => {
  const bytes = syntheticSqueezeNet({ "fire3/expand3x3": [3, 3, 16, 32] });
  const err = throwsUser(() => parseSqueezeNet(bytes, "odd.mat"));
  assertOneLineMentioning(err, [
    "odd.mat",
    "not SqueezeNet 1.1",
    "fire3/expand3x3",
    "3x3x16x32",
    "3x3x16x64",
  ]);
});

Deno.test("parseSqueezeNet names a missing layer", () => {
  const bytes = syntheticSqueezeNet({ "fire7/expand1x1": null });
  const err = throwsUser(() => parseSqueezeNet(bytes, "partial.mat"));
  assertOneLineMentioning(err, ["partial.mat", "fire7/expand1x1", "missing"]);
});

Deno.test("parseSqueezeNet wraps MAT-file errors with the file's name", () => {
  const err = throwsUser(
    () => parseSqueezeNet(new Uint8Array(50), "tiny.mat"),
  );
  assertOneLineMentioning(err, ["tiny.mat", "128-byte"]);
});

// ---------------------------------------------------------------------------
// Resolution and download

/** Serves `body` (or a status) on 127.0.0.1; counts requests. */
async function serve(
  handler: () => Response,
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const { promise: ready, resolve: onReady } = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => onReady(port) },
    () => {
      count++;
      return handler();
    },
  );
  const port = await ready;
  return {
    url: `http://127.0.0.1:${port}/sqz_notop.mat`,
    requests: () => count,
    close: () => server.shutdown(),
  };
}

/** An environment holding only `vars`. */
function envOf(vars: Record<string, string>): (name: string) => string | undefined {
  return (name) => vars[name];
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names.sort();
}

async function closedPortUrl(): Promise<string> {
  const s = await serve(() => new Response("x"));
  await s.close();
  return s.url;
}

Deno.test("resolveWeights downloads a good file into STYLIZE_CACHE_DIR and then reuses it", async () => {
  const bytes = await realBytes();
  const server = await serve(() => new Response(bytes.slice()));
  try {
    const cache = join(await Deno.makeTempDir(), "nested", "cache");
    const env = envOf({ STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: server.url });
    const messages: string[] = [];
    const path = await resolveWeights({ env, onProgress: (m) => messages.push(m) });
    assert.equal(path, join(cache, "sqz_notop.mat"));
    assert.equal(await sha256Hex(await Deno.readFile(path)), WEIGHTS_SHA256);
    assert.deepEqual(await listDir(cache), ["sqz_notop.mat"]);
    assert.ok(messages.some((m) => m.includes(server.url)), messages.join(" | "));
    assert.equal(server.requests(), 1);
    // A second call finds the cached file without downloading.
    assert.equal(await resolveWeights({ env }), path);
    assert.equal(server.requests(), 1);
    assert.equal((await loadWeights(path)).size, 25);
  } finally {
    await server.close();
  }
});

Deno.test("resolveWeights rejects a tampered download (sha256) and caches nothing", async () => {
  const tampered = (await realBytes()).slice();
  tampered[100000] ^= 0x01;
  const server = await serve(() => new Response(tampered.slice()));
  try {
    const cache = await Deno.makeTempDir();
    const env = envOf({ STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: server.url });
    const err = await rejectsUser(resolveWeights({ env }));
    assertOneLineMentioning(err, ["sha256", server.url, WEIGHTS_SHA256, "nothing was cached"]);
    assert.deepEqual(await listDir(cache), []);
  } finally {
    await server.close();
  }
});

Deno.test("resolveWeights rejects a short download and caches nothing", async () => {
  const short = (await realBytes()).slice(0, 1000);
  const server = await serve(() => new Response(short));
  try {
    const cache = await Deno.makeTempDir();
    const env = envOf({ STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: server.url });
    const err = await rejectsUser(resolveWeights({ env }));
    assertOneLineMentioning(err, ["sha256", server.url, "1000 bytes"]);
    assert.deepEqual(await listDir(cache), []);
  } finally {
    await server.close();
  }
});

Deno.test("resolveWeights with the server down throws a UserError naming the URL and the fix", async () => {
  const url = await closedPortUrl();
  const cache = await Deno.makeTempDir();
  const env = envOf({ STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: url });
  const err = await rejectsUser(resolveWeights({ env }));
  assertOneLineMentioning(err, [url, "--weights", "STYLIZE_WEIGHTS"]);
  assert.deepEqual(await listDir(cache), []);
});

Deno.test("resolveWeights on an HTTP error throws a UserError naming the URL and status", async () => {
  const server = await serve(() => new Response("gone", { status: 404 }));
  try {
    const cache = await Deno.makeTempDir();
    const env = envOf({ STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: server.url });
    const err = await rejectsUser(resolveWeights({ env }));
    assertOneLineMentioning(err, [server.url, "404", "--weights"]);
    assert.deepEqual(await listDir(cache), []);
  } finally {
    await server.close();
  }
});

Deno.test("resolveWeights re-downloads a corrupt cached file", async () => {
  const bytes = await realBytes();
  const server = await serve(() => new Response(bytes.slice()));
  try {
    const cache = await Deno.makeTempDir();
    const cached = join(cache, "sqz_notop.mat");
    const corrupt = bytes.slice();
    corrupt[5000] ^= 0xff; // right size, wrong content
    await Deno.writeFile(cached, corrupt);
    const env = envOf({ STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: server.url });
    assert.equal(await resolveWeights({ env }), cached);
    assert.equal(server.requests(), 1);
    assert.equal(await sha256Hex(await Deno.readFile(cached)), WEIGHTS_SHA256);
  } finally {
    await server.close();
  }
});

Deno.test("resolveWeights order: explicit path beats STYLIZE_WEIGHTS beats the cache beats download", async () => {
  const dir = await Deno.makeTempDir();
  const explicit = join(dir, "explicit.mat");
  const fromEnv = join(dir, "env.mat");
  await Deno.writeFile(explicit, new Uint8Array([1]));
  await Deno.writeFile(fromEnv, new Uint8Array([2]));
  const cache = join(dir, "cache");
  await Deno.mkdir(cache);
  await Deno.copyFile(WEIGHTS, join(cache, "sqz_notop.mat"));
  // Any download attempt would fail: the URL points at a closed port.
  const url = await closedPortUrl();
  const all = { STYLIZE_WEIGHTS: fromEnv, STYLIZE_CACHE_DIR: cache, STYLIZE_WEIGHTS_URL: url };

  assert.equal(await resolveWeights({ path: explicit, env: envOf(all) }), explicit);
  assert.equal(await resolveWeights({ env: envOf(all) }), fromEnv);
  const { STYLIZE_WEIGHTS: _, ...noEnvWeights } = all;
  assert.equal(await resolveWeights({ env: envOf(noEnvWeights) }), join(cache, "sqz_notop.mat"));
  const emptyCache = join(dir, "empty");
  await assert.rejects(
    resolveWeights({ env: envOf({ ...noEnvWeights, STYLIZE_CACHE_DIR: emptyCache }) }),
    (err: Error) => err instanceof UserError && err.message.includes(url),
  );
});

Deno.test("resolveWeights rejects a missing explicit path or STYLIZE_WEIGHTS file, naming it", async () => {
  const dir = await Deno.makeTempDir();
  const missing = join(dir, "missing.mat");
  const env = envOf({ STYLIZE_CACHE_DIR: dir, STYLIZE_WEIGHTS: missing });
  assertOneLineMentioning(
    await rejectsUser(resolveWeights({ path: missing, env })),
    [missing],
  );
  assertOneLineMentioning(await rejectsUser(resolveWeights({ env })), [
    missing,
    "STYLIZE_WEIGHTS",
  ]);
});

Deno.test("weightsCacheDir follows STYLIZE_CACHE_DIR, then the platform cache directory", () => {
  assert.equal(weightsCacheDir(envOf({ STYLIZE_CACHE_DIR: "/x/y", HOME: "/h" })), "/x/y");
  const home: Record<string, string> = Deno.build.os === "windows"
    ? { LOCALAPPDATA: "C:\\L" }
    : { HOME: "/h" };
  const expected = {
    windows: join("C:\\L", "stylize"),
    darwin: join("/h", "Library", "Caches", "stylize"),
  }[Deno.build.os as string] ?? join("/h", ".cache", "stylize");
  assert.equal(weightsCacheDir(envOf(home)), expected);
  if (Deno.build.os === "linux") {
    assert.equal(
      weightsCacheDir(envOf({ HOME: "/h", XDG_CACHE_HOME: "/xdg" })),
      join("/xdg", "stylize"),
    );
  }
  assert.equal(weightsCacheDir(envOf({})), undefined);
});

Deno.test("resolveWeights works without --allow-env (environment treated as unset)", async () => {
  const dir = await Deno.makeTempDir();
  const script = join(dir, "no_env.ts");
  const weightsModule = new URL("../src/deno/weights_file.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { resolveWeights, weightsCacheDir } from ${JSON.stringify(weightsModule)};\n` +
      `console.log(JSON.stringify([weightsCacheDir() ?? null, ` +
      `await resolveWeights({ path: ${JSON.stringify(WEIGHTS)} })]));\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-config", "--allow-read", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [null, WEIGHTS]);
});

Deno.test("WEIGHTS_URL is the pinned upstream URL", () => {
  assert.equal(WEIGHTS_URL, "https://github.com/avoroshilov/neural-style/raw/dev/sqz_notop.mat");
  assert.equal(WEIGHTS_SIZE, 2894704);
});
