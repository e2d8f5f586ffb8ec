// A deterministic tar writer for image layers and docker-archive files: POSIX ustar, entries sorted by path,
// mtime 0, numeric owners only (no user or group names). The bytes depend only on the entries, so the same
// image assembles to the same digests anywhere. Written here rather than with GNU tar because layer entries
// carry owners and modes the staging files on disk do not have (COPY --chown, a 1777 /tmp).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

export interface TarEntry {
  /** Relative path without a leading or trailing slash: `app/agent.mjs`, `etc`. */
  readonly path: string;
  readonly type: 'dir' | 'file';
  /** Permission bits, including setuid/setgid/sticky (0o1777 for /tmp). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** A file's content: a host file copied byte for byte, or bytes. */
  readonly source?: string | Uint8Array;
}

const BLOCK = 512;
const CHUNK = 1 << 20;

/** `value` as a NUL-terminated octal field of `width` bytes. */
function octal(value: number, width: number): string {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`tar: ${value} does not fit a ${width}-byte field`);
  return `${digits.padStart(width - 1, '0')}\0`;
}

/** ustar splits a long path into a prefix (up to 155 bytes) and a name (up to 100) at a slash. */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

function header(entry: TarEntry, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { name, prefix } = splitPath(entry.type === 'dir' ? `${entry.path}/` : entry.path);
  const put = (text: string, offset: number): void => {
    block.write(text, offset, 'utf8');
  };
  put(name, 0);
  put(octal(entry.mode, 8), 100);
  put(octal(entry.uid, 8), 108);
  put(octal(entry.gid, 8), 116);
  put(octal(size, 12), 124);
  put(octal(0, 12), 136);
  put(' '.repeat(8), 148);
  put(entry.type === 'dir' ? '5' : '0', 156);
  put('ustar\0' + '00', 257);
  put(prefix, 345);
  const sum = block.reduce((total, byte) => total + byte, 0);
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

/** Writes the entries (sorted by path here) to `file`; returns the archive's sha256 in hex. */
export async function writeTar(file: string, entries: Iterable<TarEntry>): Promise<string> {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  const out = await open(file, 'w');
  const write = async (bytes: Uint8Array): Promise<void> => {
    hash.update(bytes);
    await out.write(bytes);
  };
  try {
    for (const entry of sorted) {
      if (entry.type === 'dir') {
        await write(header(entry, 0));
        continue;
      }
      if (entry.source === undefined) throw new Error(`tar: ${entry.path} has no content`);
      const size =
        typeof entry.source === 'string'
          ? await copyFile(entry, entry.source, write)
          : await writeBytes(entry, entry.source, write);
      await write(Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK));
    }
    await write(Buffer.alloc(2 * BLOCK));
  } finally {
    await out.close();
  }
  return hash.digest('hex');
}

async function writeBytes(
  entry: TarEntry,
  bytes: Uint8Array,
  write: (b: Uint8Array) => Promise<void>,
): Promise<number> {
  await write(header(entry, bytes.length));
  await write(bytes);
  return bytes.length;
}

/** Header and content of a host file, read in chunks (the node binary is over 100 MiB). */
async function copyFile(entry: TarEntry, source: string, write: (b: Uint8Array) => Promise<void>): Promise<number> {
  const input = await open(source);
  try {
    const { size } = await input.stat();
    await write(header(entry, size));
    const buffer = Buffer.alloc(CHUNK);
    let copied = 0;
    while (copied < size) {
      const { bytesRead } = await input.read(buffer, 0, Math.min(CHUNK, size - copied), copied);
      if (bytesRead === 0) throw new Error(`tar: ${source} shrank while being read`);
      await write(buffer.subarray(0, bytesRead));
      copied += bytesRead;
    }
    return size;
  } finally {
    await input.close();
  }
}
