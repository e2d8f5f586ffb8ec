// Kubernetes' AtomicWriter (pkg/volume/util/atomic_writer.go), re-implemented: the files of one payload go to a
// fresh timestamped directory, `..data` is switched to it by rename(2), and the user-visible names are links
// `name -> ..data/name` created AFTER the switch (and re-created on every call, even when nothing changed, so a
// crash between the switch and the links heals on the next call: kubernetes #121472). A reader therefore sees
// a whole old or a whole new file, and one consistent set when it resolves `..data` once.
//
// On any error before the switch the new directory is removed and the old data is left exactly as it was: a
// failed write (ENOSPC on a full tmpfs) never deletes or truncates the last good files. The caller serialises
// calls. Left-overs of a writer killed mid-way (a `..data_tmp` link, unreferenced `..<timestamp>` dirs) are
// removed BEFORE the next write (a whole set left behind by a kill would otherwise take the room the next set
// needs, and every later write would fail ENOSPC), so a re-run converges.
//
// A swap holds the old and the new set side by side: a set larger than half the tmpfs is written once and can
// never be replaced. Such an ENOSPC is reported as TOO_LARGE with the tmpfs size the set needs.
import * as nodeFs from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { errnoOf } from './errno.ts';
import { CodedError } from './coded-error.ts';

export const DATA_DIR = '..data';
const DATA_TMP = '..data_tmp';
const TS_DIR_PREFIX = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\./;

/** The fs operations the writer uses (node:fs/promises by default); tests wrap them to fail or crash at a step. */
export interface WriterFs {
  readlink(p: string): Promise<string>;
  readdir(p: string, options: { withFileTypes: true }): Promise<Dirent[]>;
  readFile(p: string): Promise<Buffer>;
  writeFile(p: string, data: Uint8Array, options: { mode: number }): Promise<void>;
  mkdir(p: string, options: { recursive: true; mode: number }): Promise<string | undefined>;
  mkdtemp(prefix: string): Promise<string>;
  chmod(p: string, mode: number): Promise<void>;
  chown(p: string, uid: number, gid: number): Promise<void>;
  lstat(p: string): Promise<{ isSymbolicLink(): boolean; mode: number; gid: number }>;
  symlink(target: string, p: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(p: string): Promise<void>;
  rm(p: string, options: { recursive: true; force: true }): Promise<void>;
  statfs(p: string): Promise<{ bsize: number; blocks: number }>;
}

export interface WriteOptions {
  /** File mode, applied with an explicit chmod (open(2) would apply the umask). */
  readonly mode: number;
  /** When set, every file and directory is given this group (the pod's fsGroup). */
  readonly gid?: number;
  readonly fs?: WriterFs;
  readonly now?: () => number;
}

export interface WriteResult {
  /** False when the payload equalled the current data (only the links were checked). */
  readonly written: boolean;
  /** True when the write replaced an earlier set, possibly one an earlier agent process left (a restarted sidecar). */
  readonly replaced: boolean;
  /** The timestamped directory `..data` points to now. */
  readonly dataDir: string;
}

export type WriterErrorCode = 'BAD_PATH' | 'WRITE_FAILED' | 'TOO_LARGE';

export class WriterError extends CodedError<WriterErrorCode> {
  override readonly name = 'WriterError';
  /** The errno code behind a WRITE_FAILED or TOO_LARGE (ENOSPC, EACCES, ...). */
  readonly errno: string | undefined;
  constructor(code: WriterErrorCode, message: string, errno?: string) {
    super(code, message);
    this.errno = errno;
  }
}

/** Step 1: validates and normalises a payload path; the same rules as validatePath in atomic_writer.go. */
export function cleanPayloadPath(raw: string): string {
  const bad = (why: string): WriterError => new WriterError('BAD_PATH', `payload path "${raw.slice(0, 300)}" ${why}`);
  if (raw === '') throw bad('is empty');
  if (Buffer.byteLength(raw) > 4096) throw bad('is longer than 4096 bytes');
  if (path.isAbsolute(raw)) throw bad('is absolute');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) throw bad('is empty');
  if (segments.includes('..')) throw bad('contains ".."');
  if (segments[0]?.startsWith('..') === true) throw bad('starts with ".." (reserved for the writer)');
  if (segments.some((s) => Buffer.byteLength(s) > 255)) throw bad('has a segment longer than 255 bytes');
  return segments.join('/');
}

function tsPrefix(now: number): string {
  const iso = new Date(now).toISOString(); // 2025-01-31T12:00:00.123Z
  return `..${iso.slice(0, 19).replaceAll('-', '_').replace('T', '_').replaceAll(':', '_')}.`;
}

async function readlinkOrUndefined(fs: WriterFs, p: string): Promise<string | undefined> {
  try {
    return await fs.readlink(p);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** All paths (files and dirs) below `dir`, relative, '/'-separated. */
async function walk(fs: WriterFs, dir: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    found.push(rel);
    if (entry.isDirectory()) found.push(...(await walk(fs, dir, rel)));
  }
  return found;
}

function withParents(paths: Iterable<string>): Set<string> {
  const all = new Set<string>();
  for (const p of paths) {
    const segments = p.split('/');
    for (let i = 1; i <= segments.length; i++) all.add(segments.slice(0, i).join('/'));
  }
  return all;
}

async function sameAsOld(
  fs: WriterFs,
  oldDir: string,
  payload: ReadonlyMap<string, Uint8Array>,
  options: WriteOptions,
): Promise<boolean> {
  for (const [rel, data] of payload) {
    const file = path.join(oldDir, rel);
    try {
      const stat = await fs.lstat(file);
      if ((stat.mode & 0o7777) !== options.mode || (options.gid !== undefined && stat.gid !== options.gid))
        return false;
      if (!Buffer.from(data).equals(await fs.readFile(file))) return false;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return false;
      throw error;
    }
  }
  return true;
}

async function setOwnership(fs: WriterFs, p: string, mode: number, gid: number | undefined): Promise<void> {
  if (gid !== undefined) await fs.chown(p, -1, gid);
  await fs.chmod(p, mode);
}

/** Steps 5-7: a new timestamped directory holding the whole payload. */
async function writeTsDir(
  target: string,
  payload: ReadonlyMap<string, Uint8Array>,
  options: WriteOptions,
  fs: WriterFs,
): Promise<string> {
  const tsDir = await fs.mkdtemp(path.join(target, tsPrefix((options.now ?? Date.now)())));
  try {
    await setOwnership(fs, tsDir, 0o755, options.gid);
    for (const [rel, data] of payload) {
      const file = path.join(tsDir, rel);
      const parent = path.dirname(file);
      if (parent !== tsDir) {
        await fs.mkdir(parent, { recursive: true, mode: 0o755 });
        await setOwnership(fs, parent, 0o755, options.gid);
      }
      await fs.writeFile(file, data, { mode: options.mode });
      await setOwnership(fs, file, options.mode, options.gid);
    }
    return tsDir;
  } catch (error) {
    await fs.rm(tsDir, { recursive: true, force: true });
    throw error;
  }
}

/** Steps 8-9: point `..data` at the new directory, atomically. */
async function swapDataLink(target: string, tsName: string, fs: WriterFs): Promise<void> {
  const tmpLink = path.join(target, DATA_TMP);
  await fs.rm(tmpLink, { recursive: true, force: true });
  try {
    await fs.symlink(tsName, tmpLink);
    await fs.rename(tmpLink, path.join(target, DATA_DIR));
  } catch (error) {
    await fs.rm(tmpLink, { recursive: true, force: true });
    await fs.rm(path.join(target, tsName), { recursive: true, force: true });
    throw error;
  }
}

/** Step 10: `seg -> ..data/seg` for every first segment, created when missing. */
async function createUserVisibleLinks(
  target: string,
  payload: ReadonlyMap<string, Uint8Array>,
  fs: WriterFs,
): Promise<void> {
  const firsts = new Set([...payload.keys()].map((p) => p.split('/')[0] ?? p));
  for (const seg of firsts) {
    const link = path.join(target, seg);
    const want = `${DATA_DIR}/${seg}`;
    try {
      const stat = await fs.lstat(link);
      if (stat.isSymbolicLink() && (await fs.readlink(link)) === want) continue;
      await fs.rm(link, { recursive: true, force: true });
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
    await fs.symlink(want, link);
  }
}

/** Removes `..<timestamp>` directories other than `keep` (what `..data` points to) and a left-over `..data_tmp`. */
async function removeOrphanDirs(target: string, keep: string | undefined, fs: WriterFs): Promise<void> {
  for (const entry of await fs.readdir(target, { withFileTypes: true })) {
    if ((TS_DIR_PREFIX.test(entry.name) && entry.name !== keep) || entry.name === DATA_TMP)
      await fs.rm(path.join(target, entry.name), { recursive: true, force: true });
  }
}

/**
 * Steps 11-12 plus crash clean-up: removes user-visible links whose name left the payload, and `..<timestamp>`
 * directories other than the current one. Stale links are found in the target itself rather than in the old
 * directory's listing, so links left by a writer killed after the swap are removed by the next call too.
 */
async function removeStale(
  target: string,
  payload: ReadonlyMap<string, Uint8Array>,
  keep: string,
  fs: WriterFs,
): Promise<void> {
  const firsts = new Set([...payload.keys()].map((p) => p.split('/')[0] ?? p));
  await removeOrphanDirs(target, keep, fs);
  for (const entry of await fs.readdir(target, { withFileTypes: true })) {
    const full = path.join(target, entry.name);
    if (!entry.name.startsWith('..') && !firsts.has(entry.name) && entry.isSymbolicLink()) {
      if ((await fs.readlink(full)).startsWith(`${DATA_DIR}/`)) await fs.unlink(full);
    }
  }
}

async function writeSteps(
  target: string,
  payload: ReadonlyMap<string, Uint8Array>,
  options: WriteOptions,
  fs: WriterFs,
): Promise<WriteResult> {
  const old = await readlinkOrUndefined(fs, path.join(target, DATA_DIR));
  let removed = false;
  if (old !== undefined) {
    const keep = withParents(payload.keys());
    removed = (await walk(fs, path.join(target, old))).some((p) => !keep.has(p));
  }
  const shouldWrite = old === undefined || removed || !(await sameAsOld(fs, path.join(target, old), payload, options));
  let current = old ?? '';
  if (shouldWrite) {
    await removeOrphanDirs(target, old, fs);
    current = path.basename(await writeTsDir(target, payload, options, fs));
    await swapDataLink(target, current, fs);
  }
  await createUserVisibleLinks(target, payload, fs);
  await removeStale(target, payload, current, fs);
  return { written: shouldWrite, replaced: shouldWrite && old !== undefined, dataDir: current };
}

/** Writes `payload` (relative path -> bytes) into `target` as one atomic set. Throws WriterError. */
export async function writeAtomic(
  target: string,
  payload: ReadonlyMap<string, Uint8Array>,
  options: WriteOptions,
): Promise<WriteResult> {
  const fs = options.fs ?? nodeFs;
  const cleaned = new Map<string, Uint8Array>();
  for (const [rel, data] of payload) cleaned.set(cleanPayloadPath(rel), data);
  try {
    return await writeSteps(target, cleaned, options, fs);
  } catch (error) {
    if (error instanceof WriterError) throw error;
    const errno = errnoOf(error);
    if (errno === 'ENOSPC') {
      const tooLarge = await tooLargeFor(target, cleaned, fs);
      if (tooLarge !== undefined) throw new WriterError('TOO_LARGE', tooLarge, errno);
    }
    throw new WriterError(
      'WRITE_FAILED',
      `writing ${cleaned.size} file(s) to ${target} failed: ${errno ?? 'unknown error'}`,
      errno,
    );
  }
}

const PAGE = 4096;
const MI = 1024 * 1024;

/**
 * Why an ENOSPC is for good: the set takes more than half the filesystem (tmpfs gives each file and directory
 * whole pages), so the old and the new set never fit side by side. Undefined when it would fit (the space is
 * taken by something else).
 */
async function tooLargeFor(
  target: string,
  payload: ReadonlyMap<string, Uint8Array>,
  fs: WriterFs,
): Promise<string | undefined> {
  let total: number;
  try {
    const stats = await fs.statfs(target);
    total = stats.bsize * stats.blocks;
  } catch {
    return undefined;
  }
  const setBytes = [...payload.values()].reduce(
    (sum, data) => sum + Math.max(PAGE, Math.ceil(data.byteLength / PAGE) * PAGE),
    PAGE,
  );
  if (2 * setBytes <= total) return undefined;
  const neededMi = Math.ceil((2 * setBytes + PAGE * 4) / MI);
  return `the set of ${payload.size} file(s) takes ${Math.ceil(setBytes / 1024)} KiB and a rotation keeps the old and the new set side by side, but the volume holds ${Math.floor(total / 1024)} KiB: set sidekey.io/tmpfs-size to at least ${neededMi}Mi`;
}
