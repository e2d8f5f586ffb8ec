// Where the manifest commands (render, lint, migrate) get their input: a file, a directory's manifest files
// (recursively, in name order) or stdin, each read up to a bound so that a stray large file or an endless pipe
// is refused instead of filling the process's memory.
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What a manifest command reads of one file at most: far above any real manifest set, far below the heap. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/** The I/O a manifest command uses, replaceable in tests. */
export interface ManifestIo {
  readonly readFile: (path: string) => string;
  /** The manifest files a path names: itself, or a directory's manifest files in name order, recursively. */
  readonly expand: (path: string) => readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const MANIFEST_FILE = /\.(ya?ml|json)$/;

/** Files of a directory tree in name order (hidden entries skipped); a path that is not a directory is itself. */
export function manifestFiles(path: string): readonly string[] {
  if (path === '-' || !statSync(path, { throwIfNoEntry: false })?.isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) =>
      e.isDirectory() ? manifestFiles(join(path, e.name)) : MANIFEST_FILE.test(e.name) ? [join(path, e.name)] : [],
    );
}

/** A file (or stdin for `-`) as UTF-8, refused with code EFBIG past MAX_MANIFEST_BYTES. */
export function readManifestFile(path: string): string {
  const fd = path === '-' ? 0 : openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_MANIFEST_BYTES) {
        throw Object.assign(new Error(`larger than ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB`), { code: 'EFBIG' });
      }
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

export const processIo: ManifestIo = {
  readFile: readManifestFile,
  expand: manifestFiles,
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Why a path could not be read, for a `PATH: cannot read: …` line. */
export function readError(err: unknown): string {
  const { code } = err as NodeJS.ErrnoException;
  return code === 'EFBIG' ? (err as Error).message : (code ?? 'error');
}

/**
 * The files the command-line paths name, in order; a path that cannot be read is reported on stderr and skipped.
 * Returns whether every path could be read.
 */
export function expandPaths(paths: readonly string[], io: ManifestIo, visit: (file: string) => void): boolean {
  let ok = true;
  for (const path of paths) {
    let files: readonly string[];
    try {
      files = io.expand(path);
    } catch (err) {
      io.stderr(`${path}: cannot read: ${readError(err)}\n`);
      ok = false;
      continue;
    }
    for (const file of files) visit(file);
  }
  return ok;
}

/** A `kind: List` stands for its items; anything else for itself. */
export function expandList(manifest: unknown): readonly unknown[] {
  const m = manifest as { kind?: unknown; items?: unknown };
  return m.kind === 'List' && Array.isArray(m.items) ? m.items : [manifest];
}
