/**
 * Where stylize keeps what it caches between runs (the weights, tuned tiles,
 * lavapipe's 512-bit kernels), and environment lookups that treat a missing
 * --allow-env permission as unset.
 * @module
 */
import { join } from "node:path";

/** `Deno.env.get`, with a missing --allow-env permission read as unset. */
export function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * stylize's cache directory: `$STYLIZE_CACHE_DIR` if set, else the platform
 * cache directory plus `stylize` (`$XDG_CACHE_HOME/stylize` or
 * `~/.cache/stylize` on Linux and other Unixes, `~/Library/Caches/stylize` on
 * macOS, `%LOCALAPPDATA%\stylize` on Windows).
 *
 * @param env environment lookup; defaults to {@link defaultEnv}.
 * @returns the directory, or `undefined` if no home or cache directory is known.
 */
export function cacheDir(
  env: (name: string) => string | undefined = defaultEnv,
): string | undefined {
  const explicit = env("STYLIZE_CACHE_DIR");
  if (explicit) return explicit;
  switch (Deno.build.os) {
    case "windows": {
      const local = env("LOCALAPPDATA");
      if (local) return join(local, "stylize");
      const profile = env("USERPROFILE");
      return profile ? join(profile, "AppData", "Local", "stylize") : undefined;
    }
    case "darwin": {
      const home = env("HOME");
      return home ? join(home, "Library", "Caches", "stylize") : undefined;
    }
    default: {
      const xdg = env("XDG_CACHE_HOME");
      if (xdg) return join(xdg, "stylize");
      const home = env("HOME");
      return home ? join(home, ".cache", "stylize") : undefined;
    }
  }
}
