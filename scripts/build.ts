// `npm run build`: self-contained ESM for the distroless images and releases.
//   dist/agent/       the in-pod agent: agent.mjs and the chunks it imports (what Dockerfile.agent runs)
//   dist/webhook/     the admission webhook: webhook.mjs and its chunks (what Dockerfile.webhook runs)
//   dist/sidekey.mjs  the whole CLI (cli/release.ts: render, lint, webhook, agent; demo runs from a source checkout)
// In a single-file bundle, modules loaded with import() are evaluated only when imported (esbuild wraps them in
// lazy initialisers), but they are still parsed at start: for the agent, which runs in every pod, that cost
// ~14 MiB RSS and private memory (malloc keeps V8's parser memory for 1 MB of AWS and Vault code a file-store
// pod never runs), and for the webhook ~25 MiB for @kubernetes/client-node, which only --sidecar-mode auto uses
// once at start. So both are code-split: each provider with its SDK, and the Kubernetes client, is a chunk that
// only the processes using it load. The CLI, run once per command, stays one file.
// Each bundle gets a linked source map and a metafile (dist/<name>.meta.json) whose inputs the tests check.
import { build, type Metafile, type Plugin } from 'esbuild';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, resolve } from 'node:path';
import { defined } from '../injector/defined.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const DIST = join(ROOT, 'dist');

/** CommonJS dependencies call require(); an ESM bundle has none unless the banner creates it. */
const BANNER = "import{createRequire}from'node:module';const require=createRequire(import.meta.url);";

/**
 * Packages that dependencies require() inside try/catch and do without: debug's colour support, ws's native
 * speed-ups. Kept external even if one gets installed, so a bundle never depends on what happens to be in
 * node_modules; at run time the require() fails and the dependency carries on without it.
 */
export const OPTIONAL_REQUIRES: readonly string[] = ['supports-color', 'bufferutil', 'utf-8-validate'];

interface BundleSpec {
  /** Output file name without extension. */
  readonly name: string;
  /** The entry module as source text, resolved from the repository root. */
  readonly entry: string;
  /** Code-split into dist/<name>/: the entry <name>.mjs and the chunks that its import() calls load. */
  readonly split?: boolean;
  readonly plugins?: readonly Plugin[];
}

/**
 * Whether a Node built-in's module object (as the running Node has it) has accessor properties. An ES import of
 * such a module builds its namespace by reading every export, so the getters run at start: node:http's
 * (WebSocket, CloseEvent, MessageEvent) load the bundled undici, ~11 MiB RSS and ~50 ms; node:process's create stdin.
 */
export function hasAccessors(builtin: string): boolean {
  const module: unknown = isBuiltin(builtin) ? process.getBuiltinModule(builtin) : undefined;
  return (
    (typeof module === 'object' || typeof module === 'function') &&
    module !== null &&
    Object.values(Object.getOwnPropertyDescriptors(module)).some((d) => d.get !== undefined)
  );
}

/**
 * ES imports (static and import()) of those built-ins become a CommonJS module over process.getBuiltinModule(),
 * the way require() sees them: esbuild's interop reads each named import from the module object only where the
 * code uses it, so a getter runs only if its export is used. require() calls are left as they are.
 */
const BUILTINS_WITHOUT_NAMESPACE: Plugin = {
  name: 'builtins-without-namespace',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) =>
      (args.kind === 'import-statement' || args.kind === 'dynamic-import') && hasAccessors(args.path)
        ? { path: args.path, namespace: 'builtin-module' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin-module' }, (args) => ({
      loader: 'js',
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});\n`,
    }));
  },
};

/**
 * node-vault requires axios at load but never calls it when given a transport, and the agent always gives it
 * ours (providers/vault/agent/vault-transport.ts). Axios and what it pulls in (form-data, mime-db, follow-redirects)
 * are a third of the Vault provider's code, and axios reads globalThis.fetch at load, which loads undici: the
 * bundles carry, in its place, a module that names the mistake if node-vault were ever created without it.
 */
export const NODE_VAULT_WITHOUT_AXIOS: Plugin = {
  name: 'node-vault-without-axios',
  setup(b) {
    b.onResolve({ filter: /^axios$/ }, (args) =>
      args.importer.includes('/node_modules/node-vault/') ? { path: 'axios', namespace: 'without-axios' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'without-axios' }, () => ({
      loader: 'js',
      contents:
        "module.exports = { create() { throw new Error('axios is not bundled: create node-vault with the transport of providers/vault/agent/vault-transport.ts'); } };\n",
    }));
  },
};

/**
 * Built-ins that cost megabytes when loaded (https and tls initialise OpenSSL's TLS side: ~8 MiB RSS and ~4 MiB
 * private memory; http2 another ~4 MiB RSS) but that a pod may never use: node-vault requires https for an
 * agent it is never asked to build, the AWS SDK requires http2 for a handler Secrets Manager does not use, and a
 * plain-HTTP Vault needs no TLS. In the agent bundle every import and require() of them gets a stand-in whose
 * exports are getters: the built-in loads on the first use of one of them. A plain-data export (http2's
 * `constants`, which the AWS SDK destructures at load) is a read-only view that loads it on the first key read.
 */
export const LAZY_BUILTINS: readonly string[] = ['https', 'tls', 'http2'];

const isPlainData = (value: unknown): boolean =>
  typeof value === 'object' &&
  value !== null &&
  [Object.prototype, null].includes(Object.getPrototypeOf(value) as object | null);

/** The stand-in's source: names are read from the running Node's module when the bundle is built. */
function lazyBuiltinSource(id: string): string {
  const module = process.getBuiltinModule(id) as Record<string, unknown>;
  const names = Object.keys(module);
  return `let loaded;
const builtin = () => (loaded ??= process.getBuiltinModule(${JSON.stringify(`node:${id}`)}));
const view = (name) => new Proxy({}, {
  get: (_, key) => builtin()[name][key],
  has: (_, key) => key in builtin()[name],
  ownKeys: () => Reflect.ownKeys(builtin()[name]),
  getOwnPropertyDescriptor: (_, key) => { const d = Reflect.getOwnPropertyDescriptor(builtin()[name], key); return d && { ...d, configurable: true }; },
  set: () => false,
});
for (const name of ${JSON.stringify(names.filter((n) => !isPlainData(module[n])))}) Object.defineProperty(exports, name, { enumerable: true, get: () => builtin()[name] });
for (const name of ${JSON.stringify(names.filter((n) => isPlainData(module[n])))}) Object.defineProperty(exports, name, { enumerable: true, value: view(name) });
`;
}

export const LAZY_BUILTIN_MODULES: Plugin = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      loader: 'js',
      contents: lazyBuiltinSource(args.path),
    }));
  },
};

const runSubcommand = (module: string): string =>
  `import { main } from './cli/${module}.ts';\nprocess.exitCode = await main(process.argv.slice(2));\n`;

const BUNDLES: readonly BundleSpec[] = [
  {
    name: 'agent',
    entry: runSubcommand('agent'),
    split: true,
    plugins: [LAZY_BUILTIN_MODULES, NODE_VAULT_WITHOUT_AXIOS],
  },
  { name: 'webhook', entry: runSubcommand('webhook'), split: true },
  { name: 'sidekey', entry: "import './cli/release.ts';\n", plugins: [NODE_VAULT_WITHOUT_AXIOS] },
];

export interface BuiltBundle {
  readonly name: string;
  /** The file node runs. */
  readonly file: string;
  /** A split bundle's folder, shipped whole. */
  readonly dir?: string;
  /** JavaScript bytes, chunks included. */
  readonly bytes: number;
  readonly metafile: Metafile;
}

async function bundle(spec: BundleSpec, outDir: string): Promise<BuiltBundle> {
  const dir = spec.split === true ? join(outDir, spec.name) : undefined;
  const file = join(dir ?? outDir, `${spec.name}.mjs`);
  const result = await build({
    stdin: { contents: spec.entry, resolveDir: ROOT, sourcefile: `${spec.name}-entry.ts`, loader: 'ts' },
    ...(dir === undefined
      ? { outfile: file }
      : {
          outdir: dir,
          splitting: true,
          entryNames: spec.name,
          chunkNames: '[name]-[hash]',
          outExtension: { '.js': '.mjs' },
        }),
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    minify: true,
    keepNames: true,
    sourcemap: 'linked',
    metafile: true,
    banner: { js: BANNER },
    external: [...OPTIONAL_REQUIRES],
    plugins: [...(spec.plugins ?? []), BUILTINS_WITHOUT_NAMESPACE],
    logLevel: 'warning',
  });
  writeFileSync(join(outDir, `${spec.name}.meta.json`), JSON.stringify(result.metafile));
  const bytes = Object.keys(result.metafile.outputs)
    .filter((o) => o.endsWith('.mjs'))
    .reduce((sum, o) => sum + statSync(resolve(o)).size, 0);
  return { name: spec.name, file, ...defined({ dir }), bytes, metafile: result.metafile };
}

/** Builds every bundle into a fresh outDir (dist/ by default; the tests build into their own). */
export async function buildAll(outDir: string = DIST): Promise<readonly BuiltBundle[]> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  return Promise.all(BUNDLES.map((spec) => bundle(spec, outDir)));
}

/** Where an input comes from: its npm package, or the repository folder for our own code. */
function origin(input: string): string {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return `${parts[0] ?? input}/`;
  return parts[at + 1]?.startsWith('@') === true ? `${parts[at + 1]}/${parts[at + 2] ?? ''}` : (parts[at + 1] ?? input);
}

/** Bytes each package or folder contributes to the bundle, largest first (from the metafile). */
function contributions(metafile: Metafile): [string, number][] {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      totals.set(origin(input), (totals.get(origin(input)) ?? 0) + bytesInOutput);
    }
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

async function main(): Promise<void> {
  const built = await buildAll();
  for (const b of built) {
    const rows = contributions(b.metafile);
    process.stdout.write(`\ndist/${b.dir === undefined ? `${b.name}.mjs` : `${b.name}/`}  ${kib(b.bytes)}\n`);
    for (const [name, bytes] of rows.slice(0, 12))
      process.stdout.write(`  ${name.padEnd(40)} ${kib(bytes).padStart(11)}\n`);
    if (rows.length > 12) process.stdout.write(`  … ${rows.length - 12} more\n`);
  }
}

if (import.meta.main) await main();
