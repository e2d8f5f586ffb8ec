// Optional fields in one call instead of `...(x === undefined ? {} : { x })`: with exactOptionalPropertyTypes an
// absent field must be left out of an object, not set to undefined.

/** `fields` without the keys whose value is undefined, each kept key typed as optional. */
export function defined<T extends object>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const kept: Partial<Record<keyof T, unknown>> = {};
  for (const key of Object.keys(fields) as (keyof T)[]) {
    if (fields[key] !== undefined) kept[key] = fields[key];
  }
  return kept as { [K in keyof T]?: Exclude<T[K], undefined> };
}
