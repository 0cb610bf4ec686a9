import { expandTemplate, type TemplateParams } from "./template.ts";

/**
 * A pipeline cache: (WGSL source, entry point, override constants) → compute
 * pipeline, compiled once. Compilation errors are reported with the WGSL line.
 * @module
 */

/** Counters of a {@link PipelineCache}. */
export interface PipelineStats {
  /** Pipelines compiled (cache misses). */
  compiles: number;
  /** Requests answered from the cache. */
  hits: number;
}

/** What identifies one compute pipeline. */
export interface PipelineKey {
  /** A short name for labels and error messages, e.g. "conv3x3.wgsl". */
  name: string;
  /** The WGSL source (a template when `template` is given). */
  source: string;
  /** Template parameters (tile shapes) to expand `source` with; see template.ts. */
  template?: TemplateParams;
  /** The entry point. */
  entry: string;
  /** Pipeline-overridable constants (`override` declarations in the WGSL). */
  constants?: Record<string, number>;
}

/** Compiles compute pipelines once and hands out the cached ones. */
export class PipelineCache {
  #device: GPUDevice;
  #modules = new Map<string, Promise<GPUShaderModule>>();
  #pipelines = new Map<string, Promise<GPUComputePipeline>>();
  #stats: PipelineStats = { compiles: 0, hits: 0 };

  /** @param device the device pipelines are compiled for. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** A snapshot of the counters. */
  get stats(): PipelineStats {
    return { ...this.#stats };
  }

  /** Returns the pipeline for `key`, compiling it on first request. */
  get(key: PipelineKey): Promise<GPUComputePipeline> {
    if (key.template) {
      const name = `${key.name}[${Object.entries(key.template).map(([k, v]) => `${k}=${v}`)}]`;
      const source = this.#expand(key.source, key.template);
      return this.get({ name, source, entry: key.entry, constants: key.constants });
    }
    const consts = Object.entries(key.constants ?? {}).sort(([a], [b]) => a < b ? -1 : 1);
    const id = `${key.name}\u0000${key.entry}\u0000${JSON.stringify(consts)}\u0000${key.source}`;
    const hit = this.#pipelines.get(id);
    if (hit) {
      this.#stats.hits++;
      return hit;
    }
    this.#stats.compiles++;
    const p = this.#compile(key);
    this.#pipelines.set(id, p);
    p.catch(() => this.#pipelines.delete(id));
    return p;
  }

  #expanded = new Map<string, string>();

  #expand(source: string, params: TemplateParams): string {
    const id = `${JSON.stringify(params)}\u0000${source}`;
    let out = this.#expanded.get(id);
    if (out === undefined) this.#expanded.set(id, out = expandTemplate(source, params));
    return out;
  }

  async #compile(key: PipelineKey): Promise<GPUComputePipeline> {
    const module = await this.#module(key.name, key.source);
    this.#device.pushErrorScope("validation");
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.#device.createComputePipelineAsync({
        label: `${key.name}:${key.entry}`,
        layout: "auto",
        compute: { module, entryPoint: key.entry, constants: key.constants },
      });
    } catch (e) {
      await this.#device.popErrorScope();
      throw new Error(`cannot build pipeline ${key.name}:${key.entry}: ${(e as Error).message}`);
    }
    const err = await this.#device.popErrorScope();
    if (err) throw new Error(`cannot build pipeline ${key.name}:${key.entry}: ${err.message}`);
    return pipeline;
  }

  #module(name: string, source: string): Promise<GPUShaderModule> {
    const key = `${name}\u0000${source}`;
    let m = this.#modules.get(key);
    if (!m) {
      m = this.#compileModule(name, source);
      this.#modules.set(key, m);
    }
    return m;
  }

  async #compileModule(name: string, source: string): Promise<GPUShaderModule> {
    this.#device.pushErrorScope("validation");
    const module = this.#device.createShaderModule({ label: name, code: source });
    const info = await module.getCompilationInfo();
    const err = await this.#device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0 || err) {
      const lines = source.split("\n");
      const detail = errors.map((m) =>
        `${name}:${m.lineNum}:${m.linePos}: ${m.message}\n  ${lines[m.lineNum - 1] ?? ""}`
      ).join("\n");
      throw new Error(`WGSL compilation failed\n${detail || err?.message}`);
    }
    return module;
  }
}
