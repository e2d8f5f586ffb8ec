// What the test apps observe in a secrets directory: per visible file a fingerprint (never the value), the
// mode and the owner. The writer's own entries (..data, ..2026_…) are hidden, as an app would ignore them.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface FileSeen {
  readonly sha256: string;
  readonly mode: string;
  readonly uid: number;
  readonly gid: number;
}

export interface DbCheck {
  readonly ok: boolean;
  readonly user?: string;
  readonly error?: string;
}

export interface Status {
  readonly app: 'node' | 'python';
  readonly pid: number;
  readonly uid: number;
  loads: number;
  reloads: number;
  readonly reasons: string[];
  files: Record<string, FileSeen>;
  db?: DbCheck;
}

/** The fingerprint both apps print: the first 16 hex digits of the SHA-256 of the file's bytes. */
export function fingerprint(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex').slice(0, 16);
}

export function readSecrets(dir: string): Record<string, FileSeen> {
  const files: Record<string, FileSeen> = {};
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort();
  } catch {
    return files;
  }
  for (const name of names) {
    const path = join(dir, name);
    const stat = statSync(path);
    files[name] = {
      sha256: fingerprint(readFileSync(path)),
      mode: (stat.mode & 0o777).toString(8).padStart(4, '0'),
      uid: stat.uid,
      gid: stat.gid,
    };
  }
  return files;
}
