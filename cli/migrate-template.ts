// The consul-template forms of vault-k8s's `agent-inject-template-<name>` that Sidekey can express, translated
// into a Sidekey reference plus a template or a format: one `with secret "PATH"` (repeated blocks on the same
// path too) whose body reads fields (`.Data.x`, `.Data.data.x`, `index .Data.data "x"`, `.Data.data | toJSON`)
// between literal text, or ranges over the data writing `KEY=VALUE`, `export KEY="VALUE"` or `key: value` lines;
// or one certificate issue (`with secret "<mount>/issue/<role>" "k=v" …` or `with pkiCert`, migrate-pki.ts).
// Go's trim markers (`{{-`, `-}}`) and comments are applied as text/template does. Everything else (pipelines,
// conditionals, other functions, several secrets, writes other than an issue) is refused with the reason, for
// the annotation to be left as it is.
import type { OutputFormat } from '../injector/agent-config.ts';
import { certRead, chainRange, issueNotes, openSource } from './migrate-pki.ts';
import type { Source, SourceKind } from './migrate-pki.ts';

/** What the translated file reads and how it is rendered. */
export interface FileTranslation {
  /** The Vault path, `data/` of a KV v2 path removed (Sidekey adds it). */
  readonly path: string;
  /** The canonical ?parameters of a certificate issue. */
  readonly query?: string;
  /** The field for `#field`, when the template is one field alone. */
  readonly field?: string;
  readonly template?: string;
  readonly format?: OutputFormat;
  readonly notes: readonly string[];
}

export type TemplateTranslation =
  { readonly ok: true; readonly file: FileTranslation } | { readonly ok: false; readonly reason: string };

export type Token =
  { readonly kind: 'text'; readonly text: string } | { readonly kind: 'action'; readonly body: string };

const TRIM_LEFT = /[ \t\r\n]+$/;
const TRIM_RIGHT = /^[ \t\r\n]+/;
const SPACE = /[ \t\r\n]/;

function refuse(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}

/** The end of the action opened at `from` (the index of its `}}`), skipping quoted strings; -1 when unclosed. */
function actionEnd(template: string, from: number): number {
  for (let i = from; i < template.length - 1; i += 1) {
    const ch = template[i];
    if (ch === '"' || ch === '`') {
      const close = ch === '"' ? /(?:[^"\\\n]|\\.)*"/y : /[^`]*`/y;
      close.lastIndex = i + 1;
      if (close.exec(template) === null) return -1;
      i = close.lastIndex - 1;
    } else if (ch === '}' && template[i + 1] === '}') return i;
  }
  return -1;
}

/** Text and actions in order, trim markers applied and comments dropped, as Go's text/template lexes them. */
function lex(template: string): Token[] | string {
  const tokens: Token[] = [];
  let pos = 0;
  let trimNext = false;
  for (;;) {
    const open = template.indexOf('{{', pos);
    let text = template.slice(pos, open < 0 ? undefined : open);
    if (trimNext) text = text.replace(TRIM_RIGHT, '');
    const trimLeft = open >= 0 && template[open + 2] === '-' && SPACE.test(template[open + 3] ?? '');
    if (trimLeft) text = text.replace(TRIM_LEFT, '');
    if (text !== '') tokens.push({ kind: 'text', text });
    if (open < 0) return tokens;
    const start = open + (trimLeft ? 3 : 2);
    const close = actionEnd(template, start);
    if (close < 0) return `the action at offset ${open} is not closed with }}`;
    let body = template.slice(start, close);
    trimNext = /[ \t\r\n]-$/.test(body);
    if (trimNext) body = body.slice(0, -1);
    body = body.trim();
    if (!(body.startsWith('/*') && body.endsWith('*/'))) tokens.push({ kind: 'action', body });
    pos = close + 2;
  }
}

/** A read of the secret's data: a field, or '' for the whole data. */
interface Read {
  /** Whether it reads `.Data.data` (KV v2) rather than `.Data` (KV v1, dynamic secrets). */
  readonly kv2: boolean;
  readonly field: string;
  /** Whether the read writes a newline after the value (pkiCert's PEMs). */
  readonly newline?: boolean;
}

const FIELD_SEGMENTS = /^\.Data((?:\.[A-Za-z0-9_]+)+)$/;
const INDEX = /^index\s+\.Data(\.data)?\s+"([A-Za-z0-9_.-]{1,128})"$/;
const TO_JSON = /^\.Data(\.data)?\s*\|\s*toJSON$/;
const WITH = /^with\s+(secret|pkiCert)\s+"((?:[^"\\]|\\.)*)"\s*(.*)$/s;
const RANGE = /^range\s+(\$\w+)\s*,\s*(\$\w+)\s*:=\s*\.Data(\.data)?$/;
const CHAIN_RANGE = /^range\s+\.Data\.ca_chain$/;

/** The field an action reads, or undefined when it is not a plain read. */
function readOf(body: string): Read | undefined {
  const segments = FIELD_SEGMENTS.exec(body)?.[1]?.slice(1).split('.');
  if (segments !== undefined) {
    const kv2 = segments[0] === 'data';
    const field = (kv2 ? segments.slice(1) : segments).join('.');
    // `.Data.data` alone prints a Go map (map[k:v]), which no Sidekey form writes.
    return field === '' ? undefined : { kv2, field };
  }
  const index = INDEX.exec(body);
  if (index !== null) return { kv2: index[1] !== undefined, field: index[2] ?? '' };
  const json = TO_JSON.exec(body);
  return json === null ? undefined : { kv2: json[1] !== undefined, field: '' };
}

/** Why an action is outside what Sidekey's templates express. */
function unsupported(body: string): string {
  const shown = body.length > 60 ? `${body.slice(0, 57)}...` : body;
  const word = /^[\w$.]+/.exec(body)?.[0] ?? '';
  const why = body.includes('|')
    ? 'a pipeline (Sidekey templates apply no functions)'
    : ['if', 'else', 'range'].includes(word)
      ? 'a conditional or loop (Sidekey templates only substitute fields)'
      : word === 'pkiCert'
        ? 'a certificate (pkiCert) outside {{ with pkiCert ... }}'
        : word === 'secrets'
          ? 'a listing of secrets (one Sidekey file reads one secret)'
          : word.startsWith('$')
            ? 'a template variable'
            : 'an action Sidekey templates do not have';
  return `{{ ${shown} }} is ${why}`;
}

/** `secret/data/app/db` names the KV v2 secret Sidekey reads as `secret/app/db`. */
function withoutKvData(path: string): string {
  const [mount, second, ...rest] = path.split('/');
  return second === 'data' && rest.length > 0 ? [mount, ...rest].join('/') : path;
}

function kvPath(path: string, kv2: boolean): string | undefined {
  if (kv2) return withoutKvData(path);
  // `.Data` of a KV v2 path holds `data` and `metadata`: the fields are one level down.
  return withoutKvData(path) === path ? path : undefined;
}

interface Walk {
  source?: Source;
  readonly parts: ({ readonly text: string } | Read)[];
  range?: { readonly key: string; readonly value: string; readonly kv2: boolean; readonly body: Token[] };
  /** The body of a range over a certificate's ca_chain, until its `end`. */
  chain?: Token[] | undefined;
  /** Text outside the range, which must be blank for the lines to be the file. */
  outsideRange: string;
  inWith: boolean;
  /** Collecting the body of the range until its `end`. */
  inRange: boolean;
}

function shown(source: Source): string {
  return `with ${source.kind} "${source.path}${source.query === undefined ? '' : `?${source.query}`}"`;
}

/** Opens a `with secret|pkiCert "PATH" …` block; the reason when it cannot be. */
function openWith(state: Walk, match: RegExpExecArray): string | undefined {
  if (state.inWith) return 'it nests one with block inside another';
  const source = openSource(match[1] as SourceKind, match[2] ?? '', match[3] ?? '');
  if (typeof source === 'string') return source;
  if (state.source !== undefined && shown(state.source) !== shown(source))
    return `it reads more than one secret (${shown(state.source)} and ${shown(source)}): a Sidekey file renders one secret; split it into files`;
  state.source = source;
  state.inWith = true;
  return undefined;
}

/** Opens a range inside the block: over a secret's data, or over an issued certificate's ca_chain. */
function openRange(state: Walk, body: string): string | undefined {
  if (state.source?.query !== undefined) {
    state.chain = [];
  } else {
    const range = RANGE.exec(body);
    if (state.range !== undefined) return 'it ranges over the data twice';
    state.range = { key: range?.[1] ?? '', value: range?.[2] ?? '', kv2: range?.[3] !== undefined, body: [] };
  }
  state.inRange = true;
  return undefined;
}

/** Closes the range at its `end`: a ca_chain range becomes a read between its text. */
function closeRange(state: Walk): string | undefined {
  state.inRange = false;
  if (state.chain === undefined) return undefined;
  const chain = chainRange(state.chain);
  if (typeof chain === 'string') return chain;
  const [before, read, after] = chain;
  if (before !== '') state.parts.push({ text: before });
  state.parts.push({ kv2: false, ...read });
  if (after !== '') state.parts.push({ text: after });
  state.chain = undefined;
  return undefined;
}

/** What an action reads in the open block: a read, the reason it is refused, or undefined when it is no read. */
function readIn(source: Source | undefined, body: string): Read | string | undefined {
  const plain = readOf(body);
  if (source?.query === undefined) return plain;
  // `.Data.data.x` of an issue is named as such, to be refused as no certificate field.
  const field = plain === undefined ? undefined : `${plain.kv2 ? 'data.' : ''}${plain.field}`;
  const cert = certRead(source.kind, body, field);
  return typeof cert === 'object' ? { kv2: false, ...cert } : cert;
}

/** One action outside a range; the reason when it leaves the supported forms. */
function action(state: Walk, body: string): string | undefined {
  const opened = WITH.exec(body);
  if (opened !== null) return openWith(state, opened);
  if (body === 'end') {
    if (!state.inWith) return 'it has an {{ end }} without a with block';
    state.inWith = false;
    return undefined;
  }
  const issue = state.source?.query !== undefined;
  const ranges = issue ? state.source?.kind === 'secret' && CHAIN_RANGE.test(body) : RANGE.test(body);
  if (ranges && state.inWith) return openRange(state, body);
  const read = state.inWith ? readIn(state.source, body) : readOf(body);
  if (typeof read === 'string') return read;
  if (read === undefined) return unsupported(body);
  if (!state.inWith) return `{{ ${body} }} reads .Data outside a with secret block`;
  state.parts.push(read);
  return undefined;
}

/** Walks the tokens; returns the reason when they leave the supported forms. */
function walk(tokens: readonly Token[]): (Walk & { readonly source: Source }) | string {
  const state: Walk = { parts: [], outsideRange: '', inWith: false, inRange: false };
  for (const token of tokens) {
    let problem: string | undefined;
    if (state.inRange) {
      if (token.kind === 'action' && token.body === 'end') problem = closeRange(state);
      else (state.chain ?? state.range?.body)?.push(token);
    } else if (token.kind === 'text') {
      state.parts.push({ text: token.text });
      state.outsideRange += token.text;
    } else problem = action(state, token.body);
    if (problem !== undefined) return problem;
  }
  if (state.inWith || state.inRange) return 'a block is not closed with {{ end }}';
  const { source } = state;
  if (source === undefined) return 'it reads no secret (no with secret "PATH")';
  return { ...state, source };
}

/** Literal text and reads as a Sidekey template. */
function templateOf(parts: Walk['parts']): string {
  return parts
    .map((p) =>
      'text' in p ? p.text : `${p.field === '' ? '{{ . }}' : `{{ .${p.field} }}`}${p.newline === true ? '\n' : ''}`,
    )
    .join('');
}

/** The Sidekey template (or `#field`) of literal text and field reads. */
function fieldsTranslation(source: Source, parts: Walk['parts']): TemplateTranslation {
  const reads = parts.filter((p): p is Read => 'field' in p);
  if (reads.length === 0) return refuse('it reads no field of the secret');
  const only = parts.length === 1 ? reads[0] : undefined;
  if (source.query !== undefined) {
    // A lone pkiCert read becomes #field without pkiCert's newline after the PEM, which PEM readers skip.
    const file = { path: source.path, query: source.query, notes: issueNotes(source.kind) };
    if (only !== undefined) return { ok: true, file: { ...file, field: only.field } };
    return { ok: true, file: { ...file, template: templateOf(parts) } };
  }
  const { path } = source;
  const kv2 = reads[0]?.kv2 ?? false;
  if (reads.some((r) => r.kv2 !== kv2)) return refuse('it mixes .Data.x and .Data.data.x reads');
  const sidekeyPath = kvPath(path, kv2);
  if (sidekeyPath === undefined)
    return refuse(`it reads .Data of the KV v2 path "${path}", which holds data and metadata: read .Data.data.<field>`);
  if (only !== undefined && only.field !== '')
    return { ok: true, file: { path: sidekeyPath, field: only.field, notes: [] } };
  return { ok: true, file: { path: sidekeyPath, template: templateOf(parts), notes: [] } };
}

/** Stand-ins for the key and the value in one iteration's text (private-use characters, refused in the text). */
const KEY_MARK = '\uE000';
const VALUE_MARK = '\uE001';

interface LineShape {
  readonly exported: boolean;
  readonly separator: '=' | ': ';
}

/** The line one iteration of the range writes, or why it is not one Sidekey writes. */
function lineShape(range: NonNullable<Walk['range']>): LineShape | string {
  const sequence = range.body.map((t) =>
    t.kind === 'text' ? t.text : t.body === range.key ? KEY_MARK : t.body === range.value ? VALUE_MARK : undefined,
  );
  const bad = range.body.find((_, i) => sequence[i] === undefined);
  if (bad !== undefined) return unsupported(bad.kind === 'action' ? bad.body : '');
  if (range.body.some((t) => t.kind === 'text' && /[\uE000\uE001]/.test(t.text)))
    return 'its range writes private-use characters';
  const shape = /^(\n?)((?:export )?)\uE000(=|: )(["']?)\uE001(["']?)(\n?)$/.exec(sequence.join(''));
  if (shape === null || (shape[1] === '') === (shape[6] === '') || shape[4] !== shape[5])
    return 'its range writes lines other than KEY=VALUE, export KEY="VALUE" or key: value, one per line';
  const exported = shape[2] !== '';
  const separator = shape[3] === ': ' ? ': ' : '=';
  if (separator === ': ' && (exported || shape[4] !== ''))
    return 'its range writes key: value lines with export or quotes';
  return { exported, separator };
}

/** What one iteration of a range writes: `KEY=VALUE` lines (env, properties) or `key: value` lines (yaml). */
function rangeTranslation(
  path: string,
  range: NonNullable<Walk['range']>,
  outsideRange: string,
  fileName: string,
): TemplateTranslation {
  if (outsideRange.trim() !== '') return refuse('it writes text besides the lines of its range');
  const shape = lineShape(range);
  if (typeof shape === 'string') return refuse(shape);
  const sidekeyPath = kvPath(path, range.kv2);
  if (sidekeyPath === undefined)
    return refuse(
      `it ranges over .Data of the KV v2 path "${path}", which holds data and metadata: range over .Data.data`,
    );
  const format: OutputFormat =
    shape.separator === ': ' ? 'yaml' : /\.properties$/i.test(fileName) && !shape.exported ? 'properties' : 'env';
  const notes = [
    `written in Sidekey's ${format} format: the same keys and values, quoted where a value needs it`,
    ...(shape.exported
      ? [
          'the lines carry no "export": source the file with set -a (set -a && . FILE && set +a), or the variables stay unexported',
        ]
      : []),
  ];
  return { ok: true, file: { path: sidekeyPath, format, notes } };
}

/** Translates one `agent-inject-template-<name>` value; `fileName` picks properties for a `.properties` file. */
export function translateTemplate(template: string, fileName: string): TemplateTranslation {
  const tokens = lex(template);
  if (typeof tokens === 'string') return refuse(tokens);
  const w = walk(tokens);
  if (typeof w === 'string') return refuse(w);
  return w.range === undefined
    ? fieldsTranslation(w.source, w.parts)
    : rangeTranslation(w.source.path, w.range, w.outsideRange, fileName);
}

/** vault-k8s's default templates for a bare `agent-inject-secret-<name>`: key: value lines, or JSON. */
export type DefaultTemplate = 'map' | 'json';

/** The closest Sidekey file to vault-k8s's default template over `path`. */
export function translateDefault(path: string, kind: DefaultTemplate): FileTranslation {
  const sidekeyPath = withoutKvData(path);
  if (sidekeyPath !== path) {
    return {
      path: sidekeyPath,
      format: kind === 'json' ? 'json' : 'yaml',
      notes: [
        `vault-k8s's default template writes the whole KV v2 response (data and metadata${kind === 'map' ? ', as Go maps' : ''}); Sidekey writes the secret's fields as ${kind === 'json' ? 'JSON' : 'YAML key: value lines'}: check what the app parses`,
      ],
    };
  }
  return kind === 'json'
    ? { path, format: 'raw', notes: [] }
    : {
        path,
        format: 'yaml',
        notes: [
          'written in YAML: the same key: value lines as vault-k8s for plain values; values YAML must quote (numbers held as strings, multi-line text) are quoted',
        ],
      };
}
