/**
 * Format sniffing and header-only dimension reading for PNG and JPEG, so that
 * oversized or obviously broken files are refused before decoding.
 * @module
 */

/** Image container formats the decoder accepts. */
export type ImageFormat = "png" | "jpeg";

/** What the header says: format, and dimensions when they could be read. */
export interface HeaderInfo {
  /** Container format from the magic bytes. */
  format: ImageFormat;
  /** Width from IHDR / SOFn, or undefined when not found. */
  width?: number;
  /** Height from IHDR / SOFn, or undefined when not found (or 0 = DNL). */
  height?: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * The format named by the leading magic bytes, or null when neither PNG nor JPEG.
 * @param b file bytes
 */
export function sniffFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 8 && PNG_MAGIC.every((v, i) => b[i] === v)) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  return null;
}

/** Big-endian unsigned 16-bit read. */
function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Big-endian unsigned 32-bit read. */
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
}

/** PNG IHDR dimensions; IHDR must be the first chunk. */
function pngDims(b: Uint8Array): { width?: number; height?: number } {
  const isIhdr = b.length >= 24 && b[12] === 0x49 && b[13] === 0x48 && b[14] === 0x44 &&
    b[15] === 0x52;
  return isIhdr ? { width: u32(b, 16), height: u32(b, 20) } : {};
}

/** True for the SOFn markers that carry frame dimensions (not DHT, JPG, DAC). */
function isSof(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** What a walk over the JPEG marker segments before the first scan found. */
interface JpegWalk {
  width?: number;
  height?: number;
  /** Offset of the SOS marker, or -1 when the walk never reached it. */
  sos: number;
  /** Offset and end of the first APP1 segment's Exif payload (after "Exif\0\0"), if any. */
  exif?: [number, number];
}

/** Whether the APP1 segment at `o` (length `len`) holds Exif data. */
function isExif(b: Uint8Array, o: number, len: number): boolean {
  const tag = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
  return len >= 2 + tag.length && tag.every((v, i) => b[o + 4 + i] === v);
}

/** Length of the marker at `o` when it has no payload (fill, SOI, TEM, RSTn), else 0. */
function standaloneLength(m: number): number {
  if (m === 0xff) return 1; // fill byte before a marker
  return m === 0x01 || (m >= 0xd0 && m <= 0xd8) ? 2 : 0;
}

/** Walks JPEG marker segments from SOI up to the first SOS, noting SOFn dimensions. */
function walkJpeg(b: Uint8Array): JpegWalk {
  const out: JpegWalk = { sos: -1 };
  let o = 2;
  while (o + 4 <= b.length && b[o] === 0xff) {
    const m = b[o + 1];
    const skip = standaloneLength(m);
    if (skip > 0) {
      o += skip;
      continue;
    }
    if (m === 0xda) return { ...out, sos: o };
    if (m === 0xd9) return out;
    if (isSof(m) && o + 9 <= b.length && out.width === undefined) {
      out.height = u16(b, o + 5);
      out.width = u16(b, o + 7);
    }
    const len = u16(b, o + 2);
    if (m === 0xe1 && !out.exif && isExif(b, o, len)) {
      out.exif = [o + 10, Math.min(b.length, o + 2 + len)];
    }
    o += 2 + len;
  }
  return out;
}

/**
 * Format and (where readable) dimensions from the header alone, or null when
 * the bytes are not PNG or JPEG.
 * @param b file bytes
 */
export function readHeader(b: Uint8Array): HeaderInfo | null {
  const format = sniffFormat(b);
  if (format === null) return null;
  if (format === "png") return { format, ...pngDims(b) };
  const { width, height } = walkJpeg(b);
  return { format, width, height };
}

/**
 * Whether the JPEG has an end-of-image marker after its first scan. Inside
 * entropy-coded data 0xFF is always followed by 0x00 or RSTn, so FF D9 there
 * can only be EOI; its absence means the file was cut short.
 * @param b JPEG bytes
 */
export function jpegHasEnd(b: Uint8Array): boolean {
  const { sos } = walkJpeg(b);
  if (sos < 0) return false;
  for (let i = sos + 2; i + 1 < b.length; i++) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  }
  return false;
}

/**
 * The EXIF Orientation tag (0x0112) of a JPEG's first Exif segment: 1 (as
 * stored) when there is none or it cannot be read. Browsers turn the image
 * upright by it; so does {@link decodeImage}.
 * @param b JPEG bytes
 */
export function jpegOrientation(b: Uint8Array): number {
  const exif = walkJpeg(b).exif;
  if (!exif) return 1;
  const tiff = b.subarray(exif[0], exif[1]);
  if (tiff.length < 8) return 1;
  const le = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!le && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const ifd = view.getUint32(4, le);
  if (ifd + 2 > tiff.length) return 1;
  const n = view.getUint16(ifd, le);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > tiff.length) return 1;
    if (view.getUint16(e, le) === 0x0112 && view.getUint16(e + 2, le) === 3) {
      return view.getUint16(e + 8, le);
    }
  }
  return 1;
}
