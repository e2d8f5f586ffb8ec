// Turns a fetched secret into the bytes of one output file: field selection (`#field`), then a template or a
// format. Defaults: `raw` for one field, `json` for a whole object. Binary data stays bytes in `raw` and becomes
// base64 in the structured formats. The yaml package loads on the first yaml output: most pods never use it.
import type { FileSpec, OutputFormat } from '../injector/agent-config.ts';
import type { SecretValue } from './provider.ts';
import { RenderError } from './render-error.ts';
import { MAX_OUTPUT_BYTES, renderTemplate } from './template.ts';

type Selected =
  | { readonly kind: 'object'; readonly value: Readonly<Record<string, unknown>> }
  | { readonly kind: 'scalar'; readonly value: unknown };

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHELL_SAFE = /^[A-Za-z0-9_./:@%+,=-]*$/;
const PROPERTIES_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\f': '\\f',
};

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** The object a JSON text holds (an AWS SecretString, usually); undefined for any other text. */
export function jsonObject(text: string): Readonly<Record<string, unknown>> | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Text that holds a JSON object is an object for field selection and templates. */
function asObject(value: SecretValue): Readonly<Record<string, unknown>> | undefined {
  if (value.kind === 'object') return value.value;
  return value.kind === 'text' ? jsonObject(value.value) : undefined;
}

/** A field by exact key first, then as a dotted path into nested objects. */
function lookupField(object: Readonly<Record<string, unknown>>, field: string): unknown {
  if (Object.hasOwn(object, field)) return object[field];
  let current: unknown = object;
  for (const segment of field.split('.')) {
    if (!isRecord(current) || !Object.hasOwn(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

function select(name: string, value: SecretValue, field: string | undefined): Selected {
  if (field === undefined) {
    const object = value.kind === 'object' ? value.value : undefined;
    return object === undefined ? { kind: 'scalar', value: value.value } : { kind: 'object', value: object };
  }
  const object = asObject(value);
  if (object === undefined)
    throw new RenderError('NOT_AN_OBJECT', `file "${name}": field "${field}" asked of a secret that is not an object`);
  const selected = lookupField(object, field);
  if (selected === undefined || selected === null)
    throw new RenderError('FIELD_MISSING', `file "${name}": field "${field}" is missing`);
  return isRecord(selected) ? { kind: 'object', value: selected } : { kind: 'scalar', value: selected };
}

/** Plain text of a leaf: strings as-is, bytes as base64 (structured formats) , anything else as JSON. */
function leafText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return JSON.stringify(value, jsonReplacer);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
}

/**
 * What single quotes cannot carry for every reader: `'` ends them; python-dotenv reads a double backslash and a
 * backslash-quote as escapes.
 */
const SINGLE_UNSAFE = /['\r\n]|\\\\|\\$/;
/** What double quotes cannot carry: sh expands `$`, backquotes and backslashes; dotenv readers expand backslash-n. */
const DOUBLE_UNSAFE = /["$`\\\r\n]/;

/**
 * One env-file value that POSIX sh (`set -a; . file`), Node's parseEnv and --env-file, dotenv and python-dotenv
 * all read back as the same single value: bare, in single quotes, or in double quotes. A value no quoting
 * carries for all of them (a line break; a single quote or backslash together with `"`, `$`, a backquote or a
 * backslash) is refused rather than written in a form some reader would split into an extra variable.
 */
function envValue(file: string, key: string, text: string): string {
  if (SHELL_SAFE.test(text)) return text;
  if (!SINGLE_UNSAFE.test(text)) return `'${text}'`;
  if (!DOUBLE_UNSAFE.test(text)) return `"${text}"`;
  const why = /[\r\n]/.test(text) ? 'a line break' : 'a single quote or backslash together with one of " $ ` \\';
  throw new RenderError(
    'BAD_VALUE',
    `file "${file}": the value of key "${key.slice(0, 64)}" holds ${why}, which env readers disagree on; use format json, properties or raw, or a template`,
  );
}

/** Java .properties escaping; every code unit outside printable ASCII becomes \\uXXXX (surrogates included). */
function propertiesEscape(text: string, isKey: boolean): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    const code = text.charCodeAt(i);
    const escaped = PROPERTIES_ESCAPES[ch];
    if (escaped !== undefined) out += escaped;
    else if ('=:#!'.includes(ch) || (ch === ' ' && (isKey || i === 0))) out += `\\${ch}`;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

function entries(
  name: string,
  selected: Selected,
  field: string | undefined,
  format: OutputFormat,
): [string, string][] {
  const pairs: [string, unknown][] =
    selected.kind === 'object' ? Object.entries(selected.value) : [[field ?? name, selected.value]];
  return pairs.map(([key, value]) => {
    if (format === 'env' && !ENV_KEY.test(key)) {
      throw new RenderError(
        'BAD_KEY',
        `file "${name}": key "${key.slice(0, 64)}" is not a valid environment variable name`,
      );
    }
    return [key, leafText(value)];
  });
}

async function encode(
  name: string,
  selected: Selected,
  field: string | undefined,
  format: OutputFormat,
): Promise<Uint8Array | string> {
  switch (format) {
    case 'raw':
      if (selected.kind === 'scalar' && selected.value instanceof Uint8Array) return selected.value;
      return selected.kind === 'scalar'
        ? leafText(selected.value)
        : `${JSON.stringify(selected.value, jsonReplacer)}\n`;
    case 'json':
      return `${JSON.stringify(selected.value, jsonReplacer, 2)}\n`;
    case 'yaml': {
      const { stringify } = await import('yaml');
      return stringify(JSON.parse(JSON.stringify(selected.value, jsonReplacer)) as unknown);
    }
    case 'env':
      return entries(name, selected, field, format)
        .map(([k, v]) => `${k}=${envValue(name, k, v)}\n`)
        .join('');
    case 'properties':
      return entries(name, selected, field, format)
        .map(([k, v]) => `${propertiesEscape(k, true)}=${propertiesEscape(v, false)}\n`)
        .join('');
  }
}

function templateLookup(value: SecretValue): (field: string) => string | undefined {
  const object = asObject(value);
  return (field) => {
    if (field === '') return object === undefined ? leafText(value.value) : JSON.stringify(object, jsonReplacer);
    if (object === undefined) return undefined;
    const found = lookupField(object, field);
    return found === undefined || found === null ? undefined : leafText(found);
  };
}

/**
 * Renders one file's content. A template reads the whole secret (`{{ . }}` and `{{ .field }}`); `#field` selects
 * for the formats. Rejects with RenderError, whose message never holds a secret value.
 */
export async function renderFile(
  spec: Pick<FileSpec, 'name' | 'ref' | 'format' | 'template'>,
  value: SecretValue,
): Promise<Uint8Array> {
  let out: Uint8Array | string;
  if (spec.template !== undefined) {
    out = renderTemplate(spec.template, templateLookup(value));
  } else {
    const selected = select(spec.name, value, spec.ref.field);
    out = await encode(
      spec.name,
      selected,
      spec.ref.field,
      spec.format ?? (selected.kind === 'object' ? 'json' : 'raw'),
    );
  }
  const bytes = typeof out === 'string' ? Buffer.from(out, 'utf8') : out;
  if (bytes.byteLength > MAX_OUTPUT_BYTES)
    throw new RenderError('TOO_LARGE', `file "${spec.name}": output is larger than ${MAX_OUTPUT_BYTES} bytes`);
  return bytes;
}
