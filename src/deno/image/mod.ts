/**
 * Image files in Deno: PNG/JPEG decoding with user-facing errors and atomic
 * PNG/JPEG writing (ImageScript), on top of the engine's pixel helpers.
 * @module
 */
export { decodeImage, type DecodeOptions, readImage } from "./decode.ts";
export {
  encodeImage,
  formatForPath,
  type OutputFormat,
  writeImage,
  type WriteOptions,
} from "./encode.ts";
export { type HeaderInfo, type ImageFormat, readHeader, sniffFormat } from "./header.ts";
