/**
 * A `deno test --preload` module for tools/swiftshader.ts: with
 * `$STYLIZE_KERNEL_LOG` set, appends a line to that file for every adapter
 * the process opens (`adapter <description>`) and every compute pipeline it
 * has built (`pipeline <label>`: the engine labels them `<file>.wgsl[<template
 * parameters>]:<entry point>`, src/engine/gpu/pipelines.ts), so that
 * tools/kernel_coverage_test.ts can check which adapter ran the tests and
 * that they built every kernel. Without the variable it changes nothing.
 * @module
 */

/** The log file, if any. */
const LOG = Deno.env.get("STYLIZE_KERNEL_LOG");

/** Appends one line to the log. */
function log(line: string): void {
  Deno.writeTextFileSync(LOG!, line.replaceAll("\n", " ") + "\n", { append: true });
}

if (LOG) {
  const device = GPUDevice.prototype;
  const createAsync = device.createComputePipelineAsync;
  device.createComputePipelineAsync = async function (d: GPUComputePipelineDescriptor) {
    const pipeline = await createAsync.call(this, d);
    log(`pipeline ${d.label ?? "(no label)"}`);
    return pipeline;
  };
  const create = device.createComputePipeline;
  device.createComputePipeline = function (d: GPUComputePipelineDescriptor) {
    const pipeline = create.call(this, d);
    log(`pipeline ${d.label ?? "(no label)"}`);
    return pipeline;
  };
  const gpu = Object.getPrototypeOf(navigator.gpu) as GPU;
  const requestAdapter = gpu.requestAdapter;
  gpu.requestAdapter = async function (o?: GPURequestAdapterOptions) {
    const adapter = await requestAdapter.call(this, o);
    log(`adapter ${adapter?.info.description || "(none)"}`);
    return adapter;
  };
}
