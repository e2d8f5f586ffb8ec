// An add-only RFC 6902 patch recorded while the injector changes its copy of the pod. Each helper changes
// the object and records the one operation that does the same to the original: it appends to or inserts into
// existing arrays (never rewrites them), creates a missing array or map whole, and escapes "~" and "/".
// Operations share their values with the edited object: treat both as read-only once recorded.
import type { Operation } from 'rfc6902';

export type JsonObject = Record<string, unknown>;

/** A deep copy of JSON data (much faster than structuredClone for parsed JSON). */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** A JSON pointer from tokens, with RFC 6901 escaping. */
export function pointer(tokens: readonly (string | number)[]): string {
  let out = '';
  for (const t of tokens) {
    const token = String(t);
    out += `/${token.includes('~') || token.includes('/') ? token.replaceAll('~', '~0').replaceAll('/', '~1') : token}`;
  }
  return out;
}

export class PatchRecorder {
  readonly #ops: Operation[] = [];

  get operations(): readonly Operation[] {
    return this.#ops;
  }

  /** Sets `target[key]` when it is absent (an existing key is left alone: the injector never overwrites). */
  set(target: JsonObject, path: readonly (string | number)[], key: string, value: unknown): void {
    if (target[key] !== undefined) return;
    target[key] = value;
    this.#ops.push({ op: 'add', path: pointer([...path, key]), value });
  }

  /** Sets a scalar `target[key]`, replacing a different existing value. */
  assign(target: JsonObject, path: readonly (string | number)[], key: string, value: string | number | boolean): void {
    if (target[key] === undefined) {
      this.set(target, path, key, value);
    } else if (target[key] !== value) {
      target[key] = value;
      this.#ops.push({ op: 'replace', path: pointer([...path, key]), value });
    }
  }

  /** Appends to the array `target[key]`, creating it when missing. */
  append(target: JsonObject, path: readonly (string | number)[], key: string, values: readonly unknown[]): void {
    const list = target[key];
    if (Array.isArray(list)) {
      for (const v of values) {
        list.push(v);
        this.#ops.push({ op: 'add', path: pointer([...path, key, '-']), value: v });
      }
      return;
    }
    this.set(target, path, key, [...values]);
  }

  /** Inserts at the front of the array `target[key]`, creating it when missing. */
  prepend(target: JsonObject, path: readonly (string | number)[], key: string, values: readonly unknown[]): void {
    const list = target[key];
    if (Array.isArray(list)) {
      list.unshift(...values);
      values.forEach((v, i) => this.#ops.push({ op: 'add', path: pointer([...path, key, i]), value: v }));
      return;
    }
    this.set(target, path, key, [...values]);
  }
}
