/**
 * PNG `tEXt` chunks in PNG bytes, written and read without decoding the
 * image: the settings a run was made with travel inside the PNG it wrote
 * (keyword `stylize`, see ../model/run_record.ts). Pure TypeScript, used by
 * both edges (the CLI's PNG writer and the page's download).
 * @module
 */

/** A PNG file's first 8 bytes. */
export const PNG_SIGNATURE: readonly number[] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** CRC-32 (ISO 3309, PNG's) lookup table. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** PNG's CRC-32 of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One chunk's place in the file. */
interface Chunk {
  type: string;
  /** Offset of the chunk's length field. */
  start: number;
  /** Offset just past its CRC. */
  end: number;
  /** Its data. */
  data: Uint8Array;
}

/** Whether `png` starts with the PNG signature. */
export function isPng(png: Uint8Array): boolean {
  return png.length >= 8 && PNG_SIGNATURE.every((v, i) => png[i] === v);
}

/** The file's chunks in order, up to IEND or the last whole chunk. */
function chunks(png: Uint8Array): Chunk[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  let o = 8;
  while (o + 12 <= png.length) {
    const len = view.getUint32(o);
    if (o + 12 + len > png.length) break;
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    out.push({ type, start: o, end: o + 12 + len, data: png.subarray(o + 8, o + 8 + len) });
    o += 12 + len;
    if (type === "IEND") break;
  }
  return out;
}

/** Latin-1 bytes of `s`; throws for a character beyond U+00FF. */
function latin1(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`${what}: character U+${c.toString(16)} is not Latin-1`);
    out[i] = c;
  }
  return out;
}

/** A whole PNG chunk: length, type, data, CRC. */
export function makeChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(latin1(type, "chunk type"), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** The keyword and text of a tEXt chunk's data, or null when it has no separator. */
function splitText(data: Uint8Array): { keyword: string; text: string } | null {
  const nul = data.indexOf(0);
  if (nul < 1) return null;
  const str = (b: Uint8Array) => {
    let s = "";
    for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
    return s;
  };
  return { keyword: str(data.subarray(0, nul)), text: str(data.subarray(nul + 1)) };
}

/**
 * `png` with a `tEXt` chunk of `keyword` and `text` right after IHDR (so a
 * reader finds it before the image data); an existing `tEXt` chunk of the
 * same keyword is replaced.
 * @param png a whole PNG file
 * @param keyword 1–79 Latin-1 characters, no NUL
 * @param text Latin-1 text (keep it ASCII: JSON with `\u` escapes)
 * @throws {RangeError} for bytes that are not a PNG with IHDR, or a bad keyword or text
 */
export function insertPngText(png: Uint8Array, keyword: string, text: string): Uint8Array {
  if (!isPng(png)) throw new RangeError("not a PNG file");
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword)) {
    throw new RangeError(`bad tEXt keyword "${keyword}"`);
  }
  const list = chunks(png);
  if (list[0]?.type !== "IHDR") throw new RangeError("PNG without IHDR first");
  const body = new Uint8Array(keyword.length + 1 + text.length);
  body.set(latin1(keyword, "keyword"));
  body.set(latin1(text, "text"), keyword.length + 1);
  const chunk = makeChunk("tEXt", body);
  const kept = list.filter((c) => !(c.type === "tEXt" && splitText(c.data)?.keyword === keyword));
  const parts = [png.subarray(0, 8), png.subarray(list[0].start, list[0].end), chunk];
  for (const c of kept.slice(1)) parts.push(png.subarray(c.start, c.end));
  return concatBytes(parts);
}

/** The byte arrays one after another. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The text of the first `tEXt` chunk with `keyword` whose CRC is right, or
 * null when there is none (or the bytes are not a PNG).
 * @param png a whole PNG file
 * @param keyword the chunk's keyword
 */
export function readPngText(png: Uint8Array, keyword: string): string | null {
  if (!isPng(png)) return null;
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (const c of chunks(png)) {
    if (c.type !== "tEXt") continue;
    const t = splitText(c.data);
    if (t?.keyword !== keyword) continue;
    if (crc32(png.subarray(c.start + 4, c.end - 4)) !== view.getUint32(c.end - 4)) continue;
    return t.text;
  }
  return null;
}
