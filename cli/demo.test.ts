// `npm run demo` end to end with the default file store: it must finish by itself, succeed, and leave no
// pod, store or webhook directory behind.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const leftovers = (): string[] =>
  readdirSync(tmpdir()).filter((n) => n.startsWith('sidekey-demo-') || n.startsWith('sidekey-pod-demo-app-'));

void describe('sidekey demo', { timeout: 120_000 }, () => {
  void it('runs the whole story with the file store, stops by itself and cleans up', async () => {
    const before = leftovers();
    const { stdout } = await run(
      join(ROOT, 'node_modules', '.bin', 'node'),
      [join(ROOT, 'cli', 'sidekey.ts'), 'demo', '--rotations', '1'],
      { timeout: 90_000 },
    );
    assert.match(stdout, /\+ native sidecar sidekey-agent/);
    assert.match(stdout, /SIGHUP to the same process \(pid \d+: no restart\), 1 reload/);
    assert.match(stdout, /demo wall time/);
    assert.match(stdout, /Done: the app got every new value live/);
    assert.deepEqual(leftovers(), before);
  });

  void it('refuses bad options with the usage', async () => {
    await assert.rejects(
      run(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'cli', 'sidekey.ts'), 'demo', '--backend', 'gcp']),
      (e: { code?: number; stderr?: string }) =>
        e.code === 2 && /--backend must be file, vault or aws/.test(e.stderr ?? ''),
    );
  });
});
