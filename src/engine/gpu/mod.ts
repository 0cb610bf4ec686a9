/**
 * The GPU runtime: device acquisition, buffer pool, pipeline cache and
 * dispatch scheduler. It knows nothing of style transfer.
 * @module
 */
export * from "./device.ts";
export * from "./pool.ts";
export * from "./pipelines.ts";
export * from "./scheduler.ts";
