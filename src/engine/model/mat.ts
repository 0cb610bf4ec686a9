/**
 * A reader for MATLAB Level 5 MAT-files, as far as stylize's weights need:
 * uncompressed files holding cell arrays and real numeric arrays.
 *
 * Format reference: MathWorks, "MAT-File Format" (matfile_format.pdf), Level 5.
 * @module
 */

import { UserError } from "../errors.ts";

/** A real numeric array; `data` is in MATLAB's column-major order, as stored. */
export interface MatNumeric {
  /** Discriminant. */
  kind: "numeric";
  /** MATLAB dimensions (at least two). */
  dims: number[];
  /** The values, converted to float32, first dimension fastest. */
  data: Float32Array;
}

/** A cell array; `items` are in column-major order, as stored. */
export interface MatCell {
  /** Discriminant. */
  kind: "cell";
  /** MATLAB dimensions (at least two). */
  dims: number[];
  /** The cells' contents, first dimension fastest. */
  items: MatValue[];
}

/** A value read from a MAT-file: a numeric array or a cell array. */
export type MatValue = MatNumeric | MatCell;

// Data types (the type field of a data element's tag).
const MI_INT8 = 1;
const MI_UINT8 = 2;
const MI_INT16 = 3;
const MI_UINT16 = 4;
const MI_INT32 = 5;
const MI_UINT32 = 6;
const MI_SINGLE = 7;
const MI_DOUBLE = 9;
const MI_INT64 = 12;
const MI_UINT64 = 13;
const MI_MATRIX = 14;
const MI_COMPRESSED = 15;
const MI_UTF8 = 16;
const MI_UTF16 = 17;
const MI_UTF32 = 18;

const TYPE_NAMES: Record<number, string> = {
  [MI_INT8]: "miINT8",
  [MI_UINT8]: "miUINT8",
  [MI_INT16]: "miINT16",
  [MI_UINT16]: "miUINT16",
  [MI_INT32]: "miINT32",
  [MI_UINT32]: "miUINT32",
  [MI_SINGLE]: "miSINGLE",
  [MI_DOUBLE]: "miDOUBLE",
  [MI_INT64]: "miINT64",
  [MI_UINT64]: "miUINT64",
  [MI_MATRIX]: "miMATRIX",
  [MI_COMPRESSED]: "miCOMPRESSED",
  [MI_UTF8]: "miUTF8",
  [MI_UTF16]: "miUTF16",
  [MI_UTF32]: "miUTF32",
};

/** Byte size of one element of each numeric storage type we convert. */
const TYPE_SIZES: Record<number, number> = {
  [MI_INT8]: 1,
  [MI_UINT8]: 1,
  [MI_INT16]: 2,
  [MI_UINT16]: 2,
  [MI_INT32]: 4,
  [MI_UINT32]: 4,
  [MI_SINGLE]: 4,
  [MI_DOUBLE]: 8,
};

// Array classes (low byte of the first array-flags word).
const MX_CELL_CLASS = 1;
const MX_DOUBLE_CLASS = 6;
const MX_UINT32_CLASS = 13;

const CLASS_NAMES: Record<number, string> = {
  1: "cell (mxCELL_CLASS)",
  2: "struct (mxSTRUCT_CLASS)",
  3: "object (mxOBJECT_CLASS)",
  4: "char (mxCHAR_CLASS)",
  5: "sparse (mxSPARSE_CLASS)",
  6: "double (mxDOUBLE_CLASS)",
  7: "single (mxSINGLE_CLASS)",
  8: "int8 (mxINT8_CLASS)",
  9: "uint8 (mxUINT8_CLASS)",
  10: "int16 (mxINT16_CLASS)",
  11: "uint16 (mxUINT16_CLASS)",
  12: "int32 (mxINT32_CLASS)",
  13: "uint32 (mxUINT32_CLASS)",
  14: "int64 (mxINT64_CLASS)",
  15: "uint64 (mxUINT64_CLASS)",
  16: "function handle (mxFUNCTION_CLASS)",
  17: "opaque (mxOPAQUE_CLASS)",
};

const FLAG_COMPLEX = 0x0800;

const HEADER_SIZE = 128;
const HEADER_TEXT = "MATLAB 5.0 MAT-file";

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `unknown data type ${type}`;
}

function className(cls: number): string {
  return CLASS_NAMES[cls] ?? `unknown class ${cls}`;
}

/** One data element: its type and where its bytes are. */
interface Element {
  type: number;
  /** Offset of the first data byte. */
  start: number;
  /** Offset one past the last data byte. */
  end: number;
  /** Offset of the next element (after padding). */
  next: number;
}

class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly le: boolean) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u32(offset: number): number {
    return this.view.getUint32(offset, this.le);
  }

  /**
   * Reads the element tag at `offset`, within a container that ends at `limit`.
   * Handles the small-data-element format (upper 16 bits of the first word set).
   */
  element(offset: number, limit: number, what: string): Element {
    if (offset + 8 > limit) {
      throw truncated(what, offset, 8, limit);
    }
    const word = this.u32(offset);
    if (word >>> 16 !== 0) {
      // Small data element: byte count in the upper 16 bits, data in the next 4 bytes.
      const nbytes = word >>> 16;
      const type = word & 0xffff;
      if (nbytes > 4) {
        throw new UserError(
          `corrupt small data element for ${what} at byte ${offset}: ${nbytes} bytes of ` +
            `${typeName(type)} do not fit in 4`,
        );
      }
      return { type, start: offset + 4, end: offset + 4 + nbytes, next: offset + 8 };
    }
    const type = word;
    const nbytes = this.u32(offset + 4);
    const start = offset + 8;
    const end = start + nbytes;
    if (end > limit) {
      throw truncated(what, start, nbytes, limit);
    }
    // Compressed elements are not padded; every other element is padded to 8 bytes.
    // Tolerate missing padding at the very end of a container.
    const padded = type === MI_COMPRESSED ? end : start + Math.ceil(nbytes / 8) * 8;
    return { type, start, end, next: Math.min(padded, limit) };
  }
}

function truncated(what: string, offset: number, need: number, limit: number): UserError {
  return new UserError(
    `MAT-file is truncated or corrupt: ${what} at byte ${offset} needs ${need} bytes ` +
      `but only ${Math.max(0, limit - offset)} remain`,
  );
}

/**
 * Parses a MATLAB Level 5 MAT-file (uncompressed, either byte order) into its
 * top-level variables.
 *
 * Supports cell arrays and real numeric arrays of class single, double or any
 * integer class whose values are stored as miINT8…miUINT32, miSINGLE or miDOUBLE;
 * all numbers are converted to float32. Compressed elements (miCOMPRESSED,
 * written by `save -v7`), sparse, struct, char, object and complex arrays are
 * rejected.
 *
 * @param bytes the whole file.
 * @returns variable name → value, in file order.
 * @throws {UserError} if the file is not a MAT-file, is truncated or corrupt, or
 *   holds something this reader does not support (the message names it).
 */
export function parseMat(bytes: Uint8Array): Map<string, MatValue> {
  try {
    return parseMatUnchecked(bytes);
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (err instanceof RangeError) {
      // A bounds check we missed: still the file's fault, never a stack trace.
      throw new UserError(`MAT-file is truncated or corrupt: ${oneLine(err.message)}`);
    }
    throw err;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function parseMatUnchecked(bytes: Uint8Array): Map<string, MatValue> {
  if (bytes.length < HEADER_SIZE) {
    throw new UserError(
      `not a MAT-file: ${bytes.length} bytes is shorter than the 128-byte MAT-file header`,
    );
  }
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, HEADER_TEXT.length));
  if (text !== HEADER_TEXT) {
    const shown = JSON.stringify(
      new TextDecoder("latin1").decode(bytes.subarray(0, 19)).replace(/[^\x20-\x7e]/g, "?"),
    );
    throw new UserError(
      `not a MATLAB 5.0 MAT-file: header starts with ${shown}, expected "${HEADER_TEXT}"`,
    );
  }
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  let le: boolean;
  if (endian === "IM") le = true;
  else if (endian === "MI") le = false;
  else {
    throw new UserError(
      `corrupt MAT-file header: endian indicator is ${
        JSON.stringify(endian)
      }, expected "IM" or "MI"`,
    );
  }
  const r = new Reader(bytes, le);
  const version = r.view.getUint16(124, le);
  if (version !== 0x0100) {
    throw new UserError(
      `unsupported MAT-file version 0x${version.toString(16).padStart(4, "0")} ` +
        `(only Level 5 version 0x0100 is supported; MATLAB v7.3 files are HDF5)`,
    );
  }

  const vars = new Map<string, MatValue>();
  let offset = HEADER_SIZE;
  while (offset < bytes.length) {
    // Trailing zero padding after the last element is harmless.
    if (bytes.length - offset < 8 && bytes.subarray(offset).every((b) => b === 0)) break;
    const el = r.element(offset, bytes.length, "top-level data element");
    if (el.type === MI_COMPRESSED) {
      throw new UserError(
        `unsupported MAT-file: variable at byte ${offset} is compressed (miCOMPRESSED); ` +
          `save it uncompressed (MATLAB: save -v6; scipy: savemat(..., do_compression=False))`,
      );
    }
    if (el.type !== MI_MATRIX) {
      throw new UserError(
        `unsupported MAT-file: top-level data element at byte ${offset} is ` +
          `${typeName(el.type)}, expected miMATRIX`,
      );
    }
    const { name, value } = readMatrix(r, el, offset, "variable");
    if (vars.has(name)) {
      throw new UserError(`corrupt MAT-file: variable ${JSON.stringify(name)} appears twice`);
    }
    vars.set(name, value);
    offset = el.next;
  }
  return vars;
}

function product(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Reads the contents of a miMATRIX element (already tagged as such). */
function readMatrix(
  r: Reader,
  el: Element,
  tagOffset: number,
  context: string,
): { name: string; value: MatValue } {
  if (el.end === el.start) {
    // An empty miMATRIX (e.g. an empty cell element): a 0×0 double.
    return { name: "", value: { kind: "numeric", dims: [0, 0], data: new Float32Array(0) } };
  }
  const limit = el.end;
  const where = `${context} at byte ${tagOffset}`;

  // Array flags: two miUINT32 words.
  const flagsEl = r.element(el.start, limit, `array flags of ${where}`);
  if (flagsEl.type !== MI_UINT32 || flagsEl.end - flagsEl.start !== 8) {
    throw new UserError(
      `corrupt MAT-file: array flags of ${where} are ${typeName(flagsEl.type)} of ` +
        `${flagsEl.end - flagsEl.start} bytes, expected 8 bytes of miUINT32`,
    );
  }
  const flags = r.u32(flagsEl.start);
  const cls = flags & 0xff;

  // Dimensions: miINT32, at least two.
  const dimsEl = r.element(flagsEl.next, limit, `dimensions of ${where}`);
  const dimsBytes = dimsEl.end - dimsEl.start;
  if (dimsEl.type !== MI_INT32 || dimsBytes % 4 !== 0 || dimsBytes < 8) {
    throw new UserError(
      `corrupt MAT-file: dimensions of ${where} are ${typeName(dimsEl.type)} of ` +
        `${dimsBytes} bytes, expected at least two miINT32 values`,
    );
  }
  const dims: number[] = [];
  for (let p = dimsEl.start; p < dimsEl.end; p += 4) {
    const d = r.view.getInt32(p, r.le);
    if (d < 0) {
      throw new UserError(`corrupt MAT-file: ${where} has a negative dimension ${d}`);
    }
    dims.push(d);
  }

  // Name: miINT8 (empty for cell elements).
  const nameEl = r.element(dimsEl.next, limit, `name of ${where}`);
  if (nameEl.type !== MI_INT8 && nameEl.type !== MI_UINT8) {
    throw new UserError(
      `corrupt MAT-file: name of ${where} is ${typeName(nameEl.type)}, expected miINT8`,
    );
  }
  const name = new TextDecoder("utf-8").decode(r.bytes.subarray(nameEl.start, nameEl.end));
  const label = name === "" ? where : `${context} ${JSON.stringify(name)}`;

  if (flags & FLAG_COMPLEX) {
    throw new UserError(`unsupported MAT-file content: ${label} is complex; only real arrays`);
  }

  if (cls === MX_CELL_CLASS) {
    const count = product(dims);
    const items: MatValue[] = [];
    let offset = nameEl.next;
    for (let i = 0; i < count; i++) {
      const itemEl = r.element(offset, limit, `cell element ${i + 1} of ${label}`);
      if (itemEl.type !== MI_MATRIX) {
        throw new UserError(
          `corrupt MAT-file: cell element ${i + 1} of ${label} is ` +
            `${typeName(itemEl.type)}, expected miMATRIX`,
        );
      }
      items.push(readMatrix(r, itemEl, offset, `cell element ${i + 1} of ${label}`).value);
      offset = itemEl.next;
    }
    return { name, value: { kind: "cell", dims, items } };
  }

  if (cls >= MX_DOUBLE_CLASS && cls <= MX_UINT32_CLASS) {
    const count = product(dims);
    const realEl = r.element(nameEl.next, limit, `real part of ${label}`);
    const size = TYPE_SIZES[realEl.type];
    if (size === undefined) {
      throw new UserError(
        `unsupported MAT-file content: real part of ${label} is stored as ` +
          `${typeName(realEl.type)}; supported: miINT8…miUINT32, miSINGLE, miDOUBLE`,
      );
    }
    const nbytes = realEl.end - realEl.start;
    if (nbytes !== count * size) {
      throw new UserError(
        `corrupt MAT-file: ${label} has dimensions ${dims.join("x")} (${count} values) ` +
          `but its real part holds ${nbytes} bytes of ${typeName(realEl.type)}`,
      );
    }
    return { name, value: { kind: "numeric", dims, data: convert(r, realEl, count) } };
  }

  throw new UserError(
    `unsupported MAT-file content: ${label} is of class ${className(cls)}; ` +
      `only cell arrays and real numeric arrays are supported`,
  );
}

/** Converts `count` values stored as `el.type` to float32. */
function convert(r: Reader, el: Element, count: number): Float32Array {
  const out = new Float32Array(count);
  const v = r.view;
  const le = r.le;
  let p = el.start;
  switch (el.type) {
    case MI_SINGLE:
      if (le === HOST_LITTLE_ENDIAN) {
        // Copy the bytes (the source may be unaligned) and reinterpret them.
        new Uint8Array(out.buffer).set(r.bytes.subarray(el.start, el.start + count * 4));
      } else {
        for (let i = 0; i < count; i++, p += 4) out[i] = v.getFloat32(p, le);
      }
      break;
    case MI_DOUBLE:
      for (let i = 0; i < count; i++, p += 8) out[i] = v.getFloat64(p, le);
      break;
    case MI_INT8:
      for (let i = 0; i < count; i++, p += 1) out[i] = v.getInt8(p);
      break;
    case MI_UINT8:
      for (let i = 0; i < count; i++, p += 1) out[i] = v.getUint8(p);
      break;
    case MI_INT16:
      for (let i = 0; i < count; i++, p += 2) out[i] = v.getInt16(p, le);
      break;
    case MI_UINT16:
      for (let i = 0; i < count; i++, p += 2) out[i] = v.getUint16(p, le);
      break;
    case MI_INT32:
      for (let i = 0; i < count; i++, p += 4) out[i] = v.getInt32(p, le);
      break;
    case MI_UINT32:
      for (let i = 0; i < count; i++, p += 4) out[i] = v.getUint32(p, le);
      break;
    default:
      throw new Error(`unreachable: data type ${el.type}`);
  }
  return out;
}
