// The embedded `file` store for local development, the demo and tests: env SIDEKEY_FILE_STORE names a directory
// holding one YAML or JSON document per secret path (`file:payments/db` reads payments/db.yaml, .yml or .json).
// A mapping document is an object secret, a scalar string a text secret, a `!!binary` scalar a binary one.
// The version is a hash of the document's bytes. The directory is watched with chokidar; changes are reported
// after the file has been still for 100 ms (so a half-written file is not read), well within a second.
import { watch as chokidarWatch } from 'chokidar';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { SecretReference } from '../../../injector/reference.ts';
import { errnoOf } from '../../../agent/errno.ts';
import { ProviderError } from '../../../agent/provider.ts';
import type {
  FetchOutcome,
  Fetched,
  ProviderDeps,
  ProviderFactory,
  SecretProvider,
  SecretValue,
} from '../../../agent/provider.ts';

export const FILE_STORE_ENV = 'SIDEKEY_FILE_STORE';
const EXTENSIONS = ['.yaml', '.yml', '.json'] as const;
const MAX_DOCUMENT_BYTES = 1024 * 1024;

function toValue(document: unknown, where: string): SecretValue {
  if (typeof document === 'string') return { kind: 'text', value: document };
  if (document instanceof Uint8Array) return { kind: 'binary', value: document };
  if (typeof document === 'object' && document !== null && !Array.isArray(document)) {
    return { kind: 'object', value: document as Record<string, unknown> };
  }
  throw new ProviderError('BAD_RESPONSE', `${where}: the document is not a mapping, a string or binary`);
}

/** Parses without passing the parser's message on: YAML errors quote the offending source text. */
function parseDocument(bytes: Buffer, json: boolean, where: string): unknown {
  try {
    return json ? JSON.parse(bytes.toString('utf8')) : parseYaml(bytes.toString('utf8'), { maxAliasCount: 100 });
  } catch {
    throw new ProviderError('BAD_RESPONSE', `${where}: not valid ${json ? 'JSON' : 'YAML'}`);
  }
}

async function readSecret(root: string, ref: SecretReference, deps: ProviderDeps): Promise<Fetched> {
  const base = path.resolve(root, ref.path);
  if (!base.startsWith(`${root}${path.sep}`)) throw new ProviderError('CONFIG', `file:${ref.path}: outside the store`);
  for (const ext of EXTENSIONS) {
    const where = `file:${ref.path} (${path.basename(base)}${ext})`;
    let bytes: Buffer;
    try {
      deps.countCall('file', 'read');
      bytes = await readFile(`${base}${ext}`);
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'ENOENT') continue;
      if (errno === 'EACCES') throw new ProviderError('PERMISSION_DENIED', `${where}: permission denied`);
      throw new ProviderError('UNAVAILABLE', `${where}: read failed (${errno ?? 'unknown'})`);
    }
    if (bytes.byteLength > MAX_DOCUMENT_BYTES) throw new ProviderError('BAD_RESPONSE', `${where}: larger than 1 MiB`);
    const value = toValue(parseDocument(bytes, ext === '.json', where), where);
    return { value, version: createHash('sha256').update(bytes).digest('hex').slice(0, 16) };
  }
  throw new ProviderError('NOT_FOUND', `file:${ref.path}: no ${EXTENSIONS.join(', ')} document in the store`);
}

export function createFileProvider(deps: ProviderDeps): SecretProvider {
  const dir = deps.env[FILE_STORE_ENV];
  if (dir === undefined || dir === '') {
    throw new ProviderError(
      'CONFIG',
      `the file provider needs env ${FILE_STORE_ENV} (a directory of YAML/JSON documents)`,
    );
  }
  const root = path.resolve(dir);
  const closers = new Set<() => Promise<void>>();
  return {
    name: 'file',
    async fetchMany(refs: readonly SecretReference[]): Promise<readonly FetchOutcome[]> {
      return Promise.all(
        refs.map(async (ref): Promise<FetchOutcome> => {
          try {
            return { ok: true, ref, fetched: await readSecret(root, ref, deps) };
          } catch (error) {
            const known =
              error instanceof ProviderError
                ? error
                : new ProviderError('UNAVAILABLE', `file:${ref.path}: read failed`);
            return { ok: false, ref, error: known };
          }
        }),
      );
    },
    watch(onChange: () => void): () => void {
      const watcher = chokidarWatch(root, {
        ignoreInitial: true,
        awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
      });
      watcher.on('all', () => {
        onChange();
      });
      watcher.on('error', (error: unknown) => {
        deps.log.warn({ errno: errnoOf(error) }, 'file store watch error');
      });
      const close = (): Promise<void> => watcher.close();
      closers.add(close);
      return () => {
        closers.delete(close);
        void close();
      };
    },
    async close(): Promise<void> {
      await Promise.all([...closers].map((close) => close()));
      closers.clear();
    },
  };
}

export const createProvider: ProviderFactory = (deps) => createFileProvider(deps);
