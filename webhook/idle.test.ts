// An idle webhook sleeps: the process wakes up a few times a second at most (timeouts checks, the log flush),
// not a hundred times (prom-client's default event-loop-delay probe samples every 10 ms).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { createTestCa, leafFiles } from '../test/support/test-ca.ts';

const CLI = join(import.meta.dirname, '..', 'cli', 'sidekey.ts');
const WINDOW_MS = 3000;
const MAX_WAKE_UPS_PER_SECOND = 10;

/** Context switches of the main thread: each is a wake-up from epoll (or a preemption). */
function switches(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return (
    Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1]) +
    Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1])
  );
}

void it(`an idle webhook wakes up fewer than ${MAX_WAKE_UPS_PER_SECOND} times a second`, async () => {
  const ca = createTestCa();
  const { dir, tlsCert, tlsKey } = leafFiles(ca, 'idle');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'webhook',
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--tls-cert',
      tlsCert,
      '--tls-key',
      tlsKey,
      '--sidecar-mode',
      'native',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"event":"listening"')) resolve();
      });
      child.once('exit', (code) => {
        reject(new Error(`the webhook exited with ${String(code)}`));
      });
    });
    child.stdout.resume();
    // Let start-up work (the JIT, the first log flush) settle before counting.
    await new Promise((r) => setTimeout(r, 1000));
    const before = switches(child.pid ?? 0);
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const perSecond = (switches(child.pid ?? 0) - before) / (WINDOW_MS / 1000);
    assert.ok(
      perSecond < MAX_WAKE_UPS_PER_SECOND,
      `the idle webhook's main thread woke up ${perSecond.toFixed(1)} times a second`,
    );
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    ca.dispose();
  }
});
