// Parsing the secret reference grammar (reference.ts) at admission: the shared grammar, then the rules the
// provider declares (whether its paths may hold empty segments, which @versions and ?parameters it takes).
import { PROVIDERS } from './providers/names.ts';
import type { Provider } from './providers/names.ts';
import { declarationOf } from './providers/index.ts';
import type { SecretReference } from './reference.ts';
import { defined } from './defined.ts';

export type ReferenceResult =
  | { readonly ok: true; readonly ref: SecretReference }
  /** `example`: a valid reference of the kind asked for (with ?parameters), where the generic example would mislead. */
  | { readonly ok: false; readonly problem: string; readonly example?: string };

const PATH_CHARS = /^[A-Za-z0-9_.+=,:/-]+$/;
const FIELD_CHARS = /^[A-Za-z0-9_.-]+$/;
const VERSION_CHARS = /^[A-Za-z0-9_-]{1,64}$/;
/** DNS names, IPv4/IPv6 addresses, durations and comma lists: no percent-encoding, nothing to unescape. */
const QUERY_CHARS = /^[A-Za-z0-9_.,:*=&-]+$/;
const QUERY_KEY = /^[a-z_]{1,32}$/;
const MAX_QUERY = 2048;
const LISTED = `(providers: ${PROVIDERS.join(', ')})`;

function fail(problem: string): ReferenceResult {
  return { ok: false, problem };
}

function isProvider(text: string): text is Provider {
  return (PROVIDERS as readonly string[]).includes(text);
}

function checkPath(provider: Provider, path: string): string | undefined {
  if (path === '') return 'the path is empty';
  if (path.length > 512) return 'the path is longer than 512 characters';
  if (!PATH_CHARS.test(path)) return 'the path has characters outside A-Z a-z 0-9 _ . + = , : / -';
  if (path.startsWith('/') || path.endsWith('/')) return 'the path must not start or end with "/"';
  if (declarationOf(provider).strictSegments && path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return 'the path has an empty, "." or ".." segment';
  }
  return undefined;
}

/** Splits `text` around the character at `index` (none when it is negative): what precedes it and what follows. */
function splitAt(text: string, index: number): { readonly rest: string; readonly tail?: string } {
  return index < 0 ? { rest: text } : { rest: text.slice(0, index), tail: text.slice(index + 1) };
}

type QueryResult =
  | { readonly ok: true; readonly query: string; readonly params: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly problem: string };

/** `k=v&k2=v2` → its canonical form (sorted by key) and the pairs; repeated or empty parameters are refused. */
function parseQuery(text: string): QueryResult {
  if (text.length > MAX_QUERY) return { ok: false, problem: `the ?parameters are longer than ${MAX_QUERY} characters` };
  if (!QUERY_CHARS.test(text))
    return { ok: false, problem: 'the ?parameters have characters outside A-Z a-z 0-9 _ . , : * = & -' };
  const params = new Map<string, string>();
  for (const pair of text.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (!QUERY_KEY.test(key)) return { ok: false, problem: 'a ?parameter name is empty or not [a-z_], at most 32' };
    if (eq < 0 || eq === pair.length - 1) return { ok: false, problem: `the parameter "${key}" has no value` };
    if (params.has(key)) return { ok: false, problem: `the parameter "${key}" is given twice` };
    params.set(key, pair.slice(eq + 1));
  }
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : 1));
  return { ok: true, query: sorted.map(([k, v]) => `${k}=${v}`).join('&'), params: new Map(sorted) };
}

/** Parses a reference; the problem text never repeats the input, so it is safe to show anywhere. */
export function parseReference(text: string): ReferenceResult {
  const colon = text.indexOf(':');
  if (colon <= 0) return fail(`it has no "<provider>:" prefix ${LISTED}`);
  const provider = text.slice(0, colon);
  if (!isProvider(provider)) {
    const shown = /^[a-z0-9-]{1,20}$/.test(provider) ? ` "${provider}"` : '';
    return fail(`unknown provider${shown} ${LISTED}`);
  }
  const afterProvider = text.slice(colon + 1);
  const { rest: beforeVersion, tail: version } = splitAt(afterProvider, afterProvider.lastIndexOf('@'));
  if (version !== undefined) {
    if (!VERSION_CHARS.test(version)) return fail('the @version is empty or not [A-Za-z0-9_-], at most 64');
    const problem = declarationOf(provider).versionProblem(version);
    if (problem !== undefined) return fail(problem);
  }
  const { rest: beforeField, tail: field } = splitAt(beforeVersion, beforeVersion.indexOf('#'));
  if (field !== undefined && (!FIELD_CHARS.test(field) || field.length > 128))
    return fail('the #field is empty or not [A-Za-z0-9_.-]');
  const { rest: path, tail: queryText } = splitAt(beforeField, beforeField.indexOf('?'));
  const problem = checkPath(provider, path);
  if (problem !== undefined) return fail(problem);
  const ref: SecretReference = { provider, path, ...defined({ field }), ...defined({ version }) };
  return queryText === undefined ? { ok: true, ref } : withParameters(ref, queryText);
}

/** The reference with its canonical ?parameters, if its provider takes them and they pass its rules. */
function withParameters(ref: SecretReference, queryText: string): ReferenceResult {
  const { parameters, docs } = declarationOf(ref.provider);
  if (parameters === undefined) return fail(`${ref.provider}: references take no ?parameters`);
  const query = parseQuery(queryText);
  const refused = query.ok ? parameters(ref, query.params) : query.problem;
  if (refused === undefined && query.ok) return { ok: true, ref: { ...ref, query: query.query } };
  return { ok: false, problem: refused ?? '', ...defined({ example: docs.parametersExample }) };
}
