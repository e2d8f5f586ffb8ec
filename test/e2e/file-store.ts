// A temp directory holding the embedded file store for the scenarios that need no backend server. The agent
// runs as the app's UID, so the directory is world-readable (test values only); removed by remove().
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';

export interface FileStore {
  readonly dir: string;
  /** Writes `<path>.yaml` atomically (rename), as an operator's tool would. */
  put(path: string, document: Readonly<Record<string, string>>): void;
  remove(): void;
}

export function createFileStore(): FileStore {
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-e2e-store-'));
  chmodSync(dir, 0o755);
  return {
    dir,
    put(path, document): void {
      const file = join(dir, `${path}.yaml`);
      mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
      writeFileSync(`${file}.tmp`, stringify(document), { mode: 0o644 });
      renameSync(`${file}.tmp`, file);
    },
    remove(): void {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
