/**
 * Image I/O and pixel-level helpers for stylize: PNG/JPEG decoding with
 * user-facing errors, Pillow-exact bicubic resizing, the network's BGR
 * mean-removed tensor layout, atomic PNG/JPEG writing and contact sheets.
 * @module
 */
export { newImage, type RgbImage, type Tensor } from "./types.ts";
export { fitLongerSide, fitShorterSide, resize, roundHalfEven } from "./resize.ts";
export { fromTensor, MEAN_BGR, toTensor } from "./tensor.ts";
export { decodeImage, type DecodeOptions, DEFAULT_MAX_PIXELS, readImage } from "./decode.ts";
export { encodeImage, formatForPath, type OutputFormat, writeImage } from "./encode.ts";
export { type HeaderInfo, type ImageFormat, readHeader, sniffFormat } from "./header.ts";
export { contactSheet } from "./sheet.ts";
