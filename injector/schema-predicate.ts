// Validation of untrusted JSON against a zod schema without zod's copy on the usual path: a plain predicate
// derived from the schema accepts a valid value as it is, and only a value it refuses goes to the schema,
// which decides and names the issue with zod's own messages. Parsing a 10 KB pod with loose object schemas
// copied every key of it (about a sixth of the admission handler's time); the predicate copies nothing.
import { z } from 'zod';

type Accepts = (value: unknown) => boolean;

/**
 * undefined when the schema accepts `value`, else its first issue as "<path>: <message>" ("(root)": the value itself).
 */
export type Validate = (value: unknown) => string | undefined;

export function validator(schema: z.ZodType): Validate {
  const accepts = acceptor(schema);
  return (value) => {
    if (accepts(value)) return undefined;
    const parsed = schema.safeParse(value);
    if (parsed.success) return undefined;
    const issue = parsed.error.issues[0];
    return `${issue?.path.map(String).join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`;
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The bounds of a string's or an array's min_length and max_length checks, or undefined when it has other checks. */
function lengthBounds(checks: readonly z.core.$ZodCheck[]): { minimum: number; maximum: number } | undefined {
  let minimum = 0;
  let maximum = Number.POSITIVE_INFINITY;
  for (const {
    _zod: { def },
  } of checks) {
    if (def.check === 'min_length') minimum = Math.max(minimum, (def as z.core.$ZodCheckMinLengthDef).minimum);
    else if (def.check === 'max_length') maximum = Math.min(maximum, (def as z.core.$ZodCheckMaxLengthDef).maximum);
    else return undefined;
  }
  return { minimum, maximum };
}

/**
 * A predicate true only of values the schema accepts. It knows optional, unknown and literal schemas, objects
 * (not strict ones), records with plain string keys, arrays with a minimum length, strings with length bounds,
 * booleans, numbers and safe integers; any other schema or check it hands to the schema itself. It may refuse a
 * value the schema accepts (the schema then decides), never the reverse.
 */
function acceptor(schema: z.ZodType): Accepts {
  return (
    wrapperAcceptor(schema) ??
    collectionAcceptor(schema) ??
    scalarAcceptor(schema) ??
    ((value) => schema.safeParse(value).success)
  );
}

type Def = z.core.$ZodTypeDef & { readonly check?: string; readonly format?: string };

function wrapperAcceptor(schema: z.ZodType): Accepts | undefined {
  if (schema instanceof z.ZodOptional) {
    const inner = acceptor(schema.unwrap() as z.ZodType);
    return (value) => value === undefined || inner(value);
  }
  // undefined goes to the schema: an object refuses a missing key whose schema is not optional.
  if (schema instanceof z.ZodUnknown) return (value) => value !== undefined;
  if (schema instanceof z.ZodLiteral) {
    const values: readonly unknown[] = schema._zod.def.values;
    return (value) => value !== undefined && values.includes(value);
  }
  return undefined;
}

function collectionAcceptor(schema: z.ZodType): Accepts | undefined {
  if (schema instanceof z.ZodArray) return arrayAcceptor(schema);
  if ((schema._zod.def.checks ?? []).length > 0) return undefined;
  if (schema instanceof z.ZodObject) return objectAcceptor(schema);
  if (schema instanceof z.ZodRecord) return recordAcceptor(schema);
  return undefined;
}

function arrayAcceptor(schema: z.ZodArray): Accepts | undefined {
  const checks = schema._zod.def.checks ?? [];
  if (!checks.every((c) => c._zod.def.check === 'min_length')) return undefined;
  const element = acceptor(schema.element as z.ZodType);
  const minimum = lengthBounds(checks)?.minimum ?? 0;
  return (value) => {
    if (!Array.isArray(value) || value.length < minimum) return false;
    for (let i = 0; i < value.length; i++) if (!element(value[i])) return false;
    return true;
  };
}

function objectAcceptor(schema: z.ZodObject): Accepts | undefined {
  const { catchall } = schema._zod.def as { catchall?: unknown };
  if (catchall !== undefined && !(catchall instanceof z.ZodUnknown)) return undefined;
  const fields = Object.entries(schema.shape as Record<string, z.ZodType>).map(
    ([key, field]) => [key, acceptor(field)] as const,
  );
  return (value) => isRecord(value) && fields.every(([key, accepts]) => accepts(value[key]));
}

function recordAcceptor(schema: z.ZodRecord): Accepts | undefined {
  const keyDef = (schema.keyType as z.ZodType)._zod.def as Def;
  if (keyDef.type !== 'string' || (keyDef.checks ?? []).length > 0 || keyDef.check !== undefined) return undefined;
  const entry = acceptor(schema.valueType as z.ZodType);
  // A plain object as zod sees one: Object's prototype, no own `constructor`; zod skips no key of it but __proto__.
  return (value) => {
    if (!isRecord(value) || Object.getPrototypeOf(value) !== Object.prototype || Object.hasOwn(value, 'constructor'))
      return false;
    if (Object.getOwnPropertySymbols(value).length > 0) return false;
    for (const key in value) if (!entry(value[key])) return false;
    return true;
  };
}

function scalarAcceptor(schema: z.ZodType): Accepts | undefined {
  const def = schema._zod.def as Def;
  const checks = def.checks ?? [];
  const bounds = lengthBounds(checks);
  if (schema instanceof z.ZodString && def.check === undefined && bounds !== undefined) {
    // zod counts code points, one or two UTF-16 units each: n units hold at most n code points, any non-empty
    // string holds one, and 2n units hold at least n. Lengths in between go to the schema.
    const floor = bounds.minimum <= 1 ? bounds.minimum : 2 * bounds.minimum;
    return (value) => typeof value === 'string' && value.length >= floor && value.length <= bounds.maximum;
  }
  if (schema instanceof z.ZodNumber) {
    // .int() is a safeint format check; z.int() is a schema that is that check itself.
    const formats = [...checks.map((c) => c._zod.def as Def), ...(def.check === undefined ? [] : [def])];
    if (formats.length === 0) return (value) => Number.isFinite(value);
    if (formats.every((f) => f.check === 'number_format' && f.format === 'safeint'))
      return (value) => Number.isSafeInteger(value);
  }
  if (schema instanceof z.ZodBoolean && checks.length === 0) return (value) => typeof value === 'boolean';
  return undefined;
}
