// Parsing the secret reference grammar (reference.ts) at admission: the shared grammar, then the rules the
// provider declares (whether its paths may hold empty segments, which @versions it takes).
import { PROVIDERS } from './providers/names.ts';
import type { Provider } from './providers/names.ts';
import { declarationOf } from './providers/index.ts';
import type { SecretReference } from './reference.ts';
import { defined } from './defined.ts';

export type ReferenceResult =
  { readonly ok: true; readonly ref: SecretReference } | { readonly ok: false; readonly problem: string };

const PATH_CHARS = /^[A-Za-z0-9_.+=,:/-]+$/;
const FIELD_CHARS = /^[A-Za-z0-9_.-]+$/;
const VERSION_CHARS = /^[A-Za-z0-9_-]{1,64}$/;
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
  const { rest: path, tail: field } = splitAt(beforeVersion, beforeVersion.indexOf('#'));
  if (field !== undefined && (!FIELD_CHARS.test(field) || field.length > 128))
    return fail('the #field is empty or not [A-Za-z0-9_.-]');
  const problem = checkPath(provider, path);
  if (problem !== undefined) return fail(problem);
  return {
    ok: true,
    ref: { provider, path, ...defined({ field }), ...defined({ version }) },
  };
}
