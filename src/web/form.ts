/**
 * The settings form's inputs, read and written as {@link SettingsForm}
 * strings (a checkbox as "true"/"false", a select by its value).
 * @module
 */
import type { SettingsForm } from "./settings.ts";

/** The input of each field, by id. */
const IDS: Record<keyof SettingsForm, string> = {
  size: "size",
  styleSize: "style-size",
  iters: "iters",
  strength: "strength",
  minSize: "min-size",
  firstIters: "first-iters",
  lr: "lr",
  contentWeight: "content-weight",
  styleWeights: "style-weights",
  tvWeight: "tv-weight",
  referencePixels: "reference-pixels",
  avgDecay: "avg-decay",
  originalColors: "original-colors",
  init: "init",
  seed: "seed",
  stageEvery: "stage-every",
  maxGpuMemory: "max-gpu-memory",
};

/** The element of a field. */
function input(key: keyof SettingsForm): HTMLInputElement | HTMLSelectElement {
  return document.getElementById(IDS[key]) as HTMLInputElement | HTMLSelectElement;
}

/** The form's current values. */
export function readForm(): SettingsForm {
  const out = {} as SettingsForm;
  for (const key of Object.keys(IDS) as (keyof SettingsForm)[]) {
    const el = input(key);
    out[key] = el instanceof HTMLInputElement && el.type === "checkbox"
      ? String(el.checked)
      : el.value;
  }
  return out;
}

/** Sets the given fields (the others keep their values). */
export function writeForm(values: Partial<SettingsForm>): void {
  for (const [key, v] of Object.entries(values) as [keyof SettingsForm, string][]) {
    const el = input(key);
    if (el instanceof HTMLInputElement && el.type === "checkbox") el.checked = v === "true";
    else el.value = v;
  }
}

/** Calls `f` when any field changes. */
export function onFormChange(f: () => void): void {
  for (const key of Object.keys(IDS) as (keyof SettingsForm)[]) {
    input(key).addEventListener("change", f);
  }
}
