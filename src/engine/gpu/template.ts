/**
 * A tiny WGSL template expander, so kernels can be written once in a .wgsl
 * file and unrolled for any tile shape. Loops bounded by WGSL `override`
 * constants are not unrolled by every driver (lavapipe runs them ~2× slower
 * than straight-line code), so tile shapes are template parameters instead:
 *
 * - `//#for i in A..B` … `//#end` repeats the lines between for i = A … B−1
 *   (nestable);
 * - `//#if EXPR` … `//#end` keeps the lines between when EXPR is not 0;
 * - `${expr}` is replaced by the value of an integer expression over the
 *   parameters and loop variables (`+ - * / %`, parentheses; `/` truncates).
 *
 * Everything else is plain WGSL.
 * @module
 */

/** Template parameters: name → integer value. */
export type TemplateParams = Record<string, number>;

/** Evaluates an integer expression over `vars`. */
export function evalExpr(expr: string, vars: TemplateParams): number {
  const tokens = expr.match(/\d+|[A-Za-z_]\w*|[-+*/%()]/g) ?? [];
  if (tokens.join("") !== expr.replace(/\s+/g, "")) {
    throw new Error(`template: bad expression "${expr}"`);
  }
  let pos = 0;
  const peek = () => tokens[pos];
  const atom = (): number => {
    const t = tokens[pos++];
    if (t === undefined) throw new Error(`template: unexpected end of "${expr}"`);
    if (t === "(") {
      const v = sum();
      if (tokens[pos++] !== ")") throw new Error(`template: missing ) in "${expr}"`);
      return v;
    }
    if (t === "-") return -atom();
    if (/^\d+$/.test(t)) return Number(t);
    if (!(t in vars)) throw new Error(`template: unknown parameter ${t} in "${expr}"`);
    return vars[t];
  };
  const product = (): number => {
    let v = atom();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = tokens[pos++];
      const r = atom();
      v = op === "*" ? v * r : op === "/" ? Math.trunc(v / r) : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (peek() === "+" || peek() === "-") {
      v = tokens[pos++] === "+" ? v + product() : v - product();
    }
    return v;
  };
  const v = sum();
  if (pos !== tokens.length) throw new Error(`template: trailing tokens in "${expr}"`);
  return v;
}

const FOR = /^\s*\/\/#for\s+([A-Za-z_]\w*)\s+in\s+(.+?)\.\.(.+?)\s*$/;
const IF = /^\s*\/\/#if\s+(.+?)\s*$/;
const END = /^\s*\/\/#end\s*$/;

function expandLines(lines: string[], vars: TemplateParams, out: string[]): void {
  for (let i = 0; i < lines.length; i++) {
    const cond = lines[i].match(IF);
    const m = lines[i].match(FOR) ??
      (cond && [lines[i], "_if", "0", evalExpr(cond[1], vars) ? "1" : "0"]);
    if (!m) {
      if (END.test(lines[i])) throw new Error(`template: //#end without //#for (line ${i + 1})`);
      out.push(lines[i].replace(/\$\{([^}]+)\}/g, (_, e) => String(evalExpr(e, vars))));
      continue;
    }
    let depth = 1;
    let j = i + 1;
    for (; j < lines.length && depth > 0; j++) {
      if (FOR.test(lines[j]) || IF.test(lines[j])) depth++;
      else if (END.test(lines[j])) depth--;
    }
    if (depth > 0) throw new Error(`template: //#for or //#if without //#end (line ${i + 1})`);
    const body = lines.slice(i + 1, j - 1);
    const from = evalExpr(m[2], vars);
    const to = evalExpr(m[3], vars);
    for (let v = from; v < to; v++) expandLines(body, { ...vars, [m[1]]: v }, out);
    i = j - 1;
  }
}

/** Expands `source` with `params` (see the module doc for the syntax). */
export function expandTemplate(source: string, params: TemplateParams): string {
  const out: string[] = [];
  expandLines(source.split("\n"), params, out);
  return out.join("\n");
}
