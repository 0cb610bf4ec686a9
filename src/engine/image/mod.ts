/**
 * Pixel-level helpers of the engine, the same on every platform:
 * Pillow-exact bicubic resizing, the network's BGR mean-removed tensor layout
 * and contact sheets. Decoding and encoding files is the edges' work
 * (src/deno/image/, the browser's own decoders in src/web/).
 * @module
 */
export { newImage, type RgbImage, type Tensor } from "./types.ts";
export { fitLongerSide, fitShorterSide, resize, resizePlanes, roundHalfEven } from "./resize.ts";
export { fromTensor, MEAN_BGR, toTensor } from "./tensor.ts";
export { contactSheet } from "./sheet.ts";
export { originalColors } from "./colors.ts";
export { rgbaToRgbOnWhite } from "./alpha.ts";
export { luminance, maskTensor } from "./mask.ts";
