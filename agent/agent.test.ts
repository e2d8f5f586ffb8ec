import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { AgentConfig } from '../injector/agent-config.ts';
import { runAgent, type AgentOptions } from './agent.ts';
import { ProviderError, type Lease, type SecretProvider } from './provider.ts';
import { BACKEND_CALL_TIMEOUT_MS } from './refresh-loop.ts';

interface FakeBackend {
  readonly revoked: Lease[][];
  readonly provider: SecretProvider;
  /** The password the backend serves; change() tells the agent (like a store watch). */
  password: string;
  change(): void;
}

function backend(): FakeBackend {
  const revoked: Lease[][] = [];
  let onChange = (): void => undefined;
  const fake: FakeBackend = {
    revoked,
    password: 'p',
    change: () => {
      onChange();
    },
    provider: {
      name: 'vault',
      fetchMany: (refs) =>
        Promise.resolve(
          refs.map((ref) => ({
            ok: true as const,
            ref,
            fetched: {
              value: { kind: 'object' as const, value: { username: 'u', password: fake.password } },
              version: `v${fake.password.length}`,
              lease: {
                id: 'database/creds/ro/l1',
                durationMs: 3_600_000,
                renewable: true,
                renewedAt: Date.now(),
                issuedAt: Date.now(),
              },
            },
          })),
        ),
      revoke: (leases) => {
        revoked.push([...leases]);
        return Promise.resolve();
      },
      watch: (fn) => {
        onChange = fn;
        return () => undefined;
      },
      close: () => Promise.resolve(),
    },
  };
  return fake;
}

async function setUp(
  t: TestContext,
  over: Partial<AgentConfig>,
  tmpfsSize?: string,
): Promise<{ config: AgentConfig; fake: FakeBackend }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sidekey-agent-'));
  if (tmpfsSize !== undefined) {
    await mkdir(path.join(dir, 'secrets'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsSize}`, 'tmpfs', path.join(dir, 'secrets')]);
  }
  t.after(async () => {
    if (tmpfsSize !== undefined) execFileSync('umount', [path.join(dir, 'secrets')]);
    await rm(dir, { recursive: true, force: true });
  });
  const config: AgentConfig = {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir: path.join(dir, 'secrets'),
    port: 1,
    fileMode: 0o400,
    files: [{ name: 'user', ref: { provider: 'vault', path: 'database/creds/ro', field: 'username' } }],
    reload: { kind: 'none' },
    ...over,
  };
  return { config, fake: backend() };
}

async function started(port: () => number): Promise<void> {
  while (port() === 0 || (await fetch(`http://127.0.0.1:${port()}/startup`)).status !== 200)
    await new Promise((resolve) => setTimeout(resolve, 10));
}

function options(
  config: AgentConfig,
  fake: FakeBackend,
  stop: AbortSignal,
  extra: Partial<AgentOptions> = {},
): AgentOptions {
  return {
    config,
    env: {},
    log: pino({ level: 'silent' }),
    stop,
    port: 0,
    loadProvider: () => Promise.resolve(fake.provider),
    ...extra,
  };
}

void describe('runAgent', () => {
  void it('revokes leases on SIGTERM when asked to', async (t) => {
    const { config, fake } = await setUp(t, {});
    const controller = new AbortController();
    let port = 0;
    const done = runAgent(
      options(config, fake, controller.signal, { revokeOnExit: true, onListening: (p) => (port = p) }),
    );
    await started(() => port);
    controller.abort();
    assert.equal(await done, 0);
    assert.deepEqual(
      fake.revoked.map((l) => l.map((x) => x.id)),
      [['database/creds/ro/l1']],
    );
  });

  void it('never revokes in the init role (init-only: the app goes on using what it wrote)', async (t) => {
    const { config, fake } = await setUp(t, { role: 'init', mode: 'init-only' });
    assert.equal(await runAgent(options(config, fake, new AbortController().signal, { revokeOnExit: true })), 0);
    assert.deepEqual(fake.revoked, []);
  });

  void it('reports stale files on /readyz', async (t) => {
    const { config, fake } = await setUp(t, { staleAfterMs: 60_000 });
    let clock = Date.now();
    const controller = new AbortController();
    let port = 0;
    const done = runAgent(
      options(config, fake, controller.signal, { now: () => clock, onListening: (p) => (port = p) }),
    );
    await started(() => port);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    clock += 61_000;
    const stale = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(stale.status, 503);
    assert.equal(await stale.text(), 'stale: user\n');
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    controller.abort();
    assert.equal(await done, 0);
  });

  void it('keeps the last good files when the tmpfs is full, and recovers', async (t) => {
    const { config, fake } = await setUp(
      t,
      { files: [{ name: 'pw', ref: { provider: 'vault', path: 'kv/app', field: 'password' } }] },
      '64k',
    );
    const controller = new AbortController();
    let port = 0;
    const done = runAgent(options(config, fake, controller.signal, { onListening: (p) => (port = p) }));
    await started(() => port);
    const file = path.join(config.secretsDir, 'pw');
    fake.password = 'x'.repeat(100_000);
    fake.change();
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    while (!(await metrics()).includes('sidekey_agent_writes_total{result="failed"}'))
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(await readFile(file, 'utf8'), 'p');
    fake.password = 'recovered';
    fake.change();
    while ((await readFile(file, 'utf8')) !== 'recovered') await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    assert.equal(await done, 0);
  });

  void it('a backward wall-clock step does not postpone the next refresh (due times are on the monotonic clock)', async (t) => {
    const { config, fake } = await setUp(t, {
      files: [
        { name: 'kv', ref: { provider: 'vault', path: 'kv/app', field: 'k' }, refreshMs: 60_000 },
        { name: 'plain', ref: { provider: 'file', path: 'app', field: 'k' }, refreshMs: 600_000 },
      ],
    });
    let store = 'one';
    let onStoreChange = (): void => undefined;
    const plain = (name: 'vault' | 'file'): SecretProvider => ({
      name,
      fetchMany: (refs) =>
        Promise.resolve(
          refs.map((ref) => ({
            ok: true as const,
            ref,
            fetched: { value: { kind: 'object' as const, value: { k: store } }, version: store },
          })),
        ),
      watch: (fn) => {
        if (name === 'file') onStoreChange = fn;
        return () => undefined;
      },
      close: () => Promise.resolve(),
    });
    // Every timer the agent sets, with its delay; they run on the real clock.
    const delays: number[] = [];
    const timers = {
      setTimeout: (fn: () => void, ms: number) => {
        delays.push(ms);
        return setTimeout(fn, ms);
      },
      clearTimeout: (handle: unknown) => {
        clearTimeout(handle as NodeJS.Timeout);
      },
    };
    // The node's wall clock, to be set back an hour later on.
    const realNow = Date.now.bind(Date);
    let step = 0;
    t.mock.method(Date, 'now', () => realNow() - step);
    const controller = new AbortController();
    let port = 0;
    const done = runAgent(
      options(config, fake, controller.signal, {
        timers,
        onListening: (p) => (port = p),
        loadProvider: (name) => Promise.resolve(plain(name === 'file' ? 'file' : 'vault')),
      }),
    );
    await started(() => port);
    // The clock is set back an hour; then the store changes and the agent plans its next wake: the Vault
    // secret, due within 60 s of the first fetch.
    step = 3_600_000;
    delays.length = 0;
    store = 'two';
    onStoreChange();
    while ((await readFile(path.join(config.secretsDir, 'plain'), 'utf8')) !== 'two')
      await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    assert.equal(await done, 0);
    const planned = delays.filter((ms) => ms !== BACKEND_CALL_TIMEOUT_MS);
    assert.ok(planned.length > 0);
    assert.ok(
      Math.max(...planned) <= 60_000,
      `the next refresh is planned within its 60 s interval, not an hour later: ${planned.join(', ')} ms`,
    );
  });

  void it('writes the one-line reason of a failed start to the termination log', async (t) => {
    const { config, fake } = await setUp(t, { role: 'init', mode: 'init-only' });
    const terminationLog = path.join(path.dirname(config.secretsDir), 'termination-log');
    await writeFile(terminationLog, 'a longer message from an earlier run\n');
    const refuse = (): Promise<SecretProvider> =>
      Promise.reject(new ProviderError('CONFIG', 'vault settings are missing'));
    const code = await runAgent(
      options(config, fake, new AbortController().signal, { terminationLog, loadProvider: refuse }),
    );
    assert.equal(code, 1);
    assert.equal(await readFile(terminationLog, 'utf8'), 'CONFIG: vault settings are missing\n');
  });
});
