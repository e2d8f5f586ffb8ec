// The providers' wiring, generated from PROVIDERS (injector/providers/names.ts) so that adding a provider is its
// folder plus one name there. The webhook's registry imports each declaration statically (typed, checked by the
// compiler); the agent's loaders import each fetch module lazily, so a pod loads only the providers it uses. Two
// files, one per side, keep each bundle free of the other half.
// `node scripts/providers.ts` writes them (`npm run generate` runs it first: the other generators import the
// registry); staleProviderFiles() lists those that differ (a test calls it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { PROVIDERS } from '../injector/providers/names.ts';

const ROOT = resolve(import.meta.dirname, '..');
const HEADER =
  '// Generated from PROVIDERS (injector/providers/names.ts) by scripts/providers.ts: do not edit, run `npm run generate`.';
/** A name that is also an identifier: the declaration module exports a const of that name. */
const NAME = /^[a-z][a-z0-9]*$/;

function registry(names: readonly string[]): string {
  return [
    HEADER,
    '// Each declaration (providers/<name>/injector/<name>.ts exports `<name>`), imported statically: the webhook',
    '// uses every one. The compiler checks the entries against PROVIDERS, both ways.',
    "import type { Provider } from './names.ts';",
    ...names.map((n) => `import { ${n} } from '../../providers/${n}/injector/${n}.ts';`),
    `export const REGISTRY = { ${names.join(', ')} } as const satisfies Record<Provider, { readonly name: Provider }>;`,
  ].join('\n');
}

function loaders(names: readonly string[]): string {
  return [
    HEADER,
    '// Each fetch module (providers/<name>/agent/<name>.ts exports `createProvider`), imported on first use: a pod',
    '// loads only the providers (and their SDKs) its files reference.',
    "import type { Provider } from '../../injector/providers/names.ts';",
    "import type { ProviderFactory } from '../provider.ts';",
    'export const LOADERS: Readonly<Record<Provider, () => Promise<{ createProvider: ProviderFactory }>>> = {',
    ...names.map((n) => `${n}: () => import('../../providers/${n}/agent/${n}.ts'),`),
    '};',
  ].join('\n');
}

/** The generated files (path from the repository root → content) for these provider names. */
export async function generatedProviderFiles(names: readonly string[]): Promise<Map<string, string>> {
  const bad = names.filter((n) => !NAME.test(n));
  if (bad.length > 0)
    throw new Error(`PROVIDERS: ${bad.join(', ')} is not a lowercase name of letters and digits, such as "vault"`);
  const files = new Map([
    ['injector/providers/registry.generated.ts', registry(names)],
    ['agent/providers/loaders.generated.ts', loaders(names)],
  ]);
  const options = { ...(await resolveConfig(join(ROOT, 'package.json'))), parser: 'typescript' };
  for (const [path, text] of files) files.set(path, await format(text, options));
  return files;
}

const current = (path: string): string | undefined => {
  try {
    return readFileSync(join(ROOT, path), 'utf8');
  } catch {
    return undefined;
  }
};

/** The generated files that differ from what PROVIDERS gives (empty when up to date). */
export async function staleProviderFiles(): Promise<string[]> {
  const files = await generatedProviderFiles(PROVIDERS);
  return [...files].filter(([path, text]) => current(path) !== text).map(([path]) => path);
}

if (import.meta.main) {
  for (const [path, text] of await generatedProviderFiles(PROVIDERS)) writeFileSync(join(ROOT, path), text);
}
