// End to end: the real `sidekey agent` process with the embedded file store, a real tmp directory and a real
// loopback reload endpoint. Every captured log is scanned for the secret values the test wrote.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { AgentConfig } from '../injector/agent-config.ts';
import {
  freePort,
  metrics,
  reloadEndpoint,
  startAgent as startAgentProcess,
  status,
  until,
  type AgentProcess,
} from '../agent/testdata/agent-process.ts';
import { startReloadApp } from '../agent/testdata/start-reload-app.ts';

const SECRETS = ['pw-original-7f3a', 'tok-original-19bc', 'pw-rotated-55de', 'tok-rotated-a0e1'];

async function workspace(t: TestContext): Promise<{ root: string; store: string; secrets: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'sidekey-agent-e2e-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dirs = { root, store: path.join(root, 'store'), secrets: path.join(root, 'secrets') };
  await mkdir(path.join(dirs.store, 'payments'), { recursive: true });
  await writeFile(path.join(dirs.store, 'payments/db.yaml'), `username: app\npassword: ${SECRETS[0] ?? ''}\n`);
  await writeFile(path.join(dirs.store, 'payments/api.json'), JSON.stringify({ token: SECRETS[1] }));
  return dirs;
}

function startAgent(t: TestContext, config: AgentConfig, store: string): AgentProcess {
  return startAgentProcess(t, config, { SIDEKEY_FILE_STORE: store }, SECRETS);
}

function config(dirs: { secrets: string }, port: number, over: Partial<AgentConfig> = {}): AgentConfig {
  return {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir: dirs.secrets,
    port,
    fileMode: 0o400,
    files: [
      { name: 'password', ref: { provider: 'file', path: 'payments/db', field: 'password' } },
      { name: 'db.env', ref: { provider: 'file', path: 'payments/db' }, format: 'env' },
      { name: 'auth-header', ref: { provider: 'file', path: 'payments/api' }, template: 'Bearer {{ .token }}' },
    ],
    reload: { kind: 'none' },
    ...over,
  };
}

void describe('sidekey agent (role run)', () => {
  void it('writes, passes /startup, follows a rotation within a second and reloads once', async (t) => {
    const dirs = await workspace(t);
    const reload = await reloadEndpoint(t);
    const port = await freePort();
    const agent = startAgent(t, config(dirs, port, { reload: { kind: 'http', url: reload.url } }), dirs.store);
    await until('/startup', async () => (await status(port, '/startup')) === 200);
    assert.equal(await status(port, '/readyz'), 200);
    assert.equal(await status(port, '/healthz'), 200);
    assert.equal(await readFile(path.join(dirs.secrets, 'password'), 'utf8'), SECRETS[0]);
    assert.equal(
      await readFile(path.join(dirs.secrets, 'db.env'), 'utf8'),
      `username=app\npassword=${SECRETS[0] ?? ''}\n`,
    );
    assert.equal(await readFile(path.join(dirs.secrets, 'auth-header'), 'utf8'), `Bearer ${SECRETS[1] ?? ''}`);
    assert.equal((await stat(path.join(dirs.secrets, 'password'))).mode & 0o777, 0o400);

    const rotated = Date.now();
    await writeFile(path.join(dirs.store, 'payments/db.yaml'), `username: app\npassword: ${SECRETS[2] ?? ''}\n`);
    await writeFile(path.join(dirs.store, 'payments/api.json'), JSON.stringify({ token: SECRETS[3] }));
    await until('the rotated files', async () =>
      (await readFile(path.join(dirs.secrets, 'auth-header'), 'utf8')).includes(SECRETS[3] ?? '-'),
    );
    assert.equal(await readFile(path.join(dirs.secrets, 'password'), 'utf8'), SECRETS[2]);
    const latency = Date.now() - rotated;
    assert.ok(latency < 1500, `rotation took ${latency} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(reload.posts(), 1, 'one reload for one rotation');
    const text = await metrics(port);
    assert.match(text, /sidekey_agent_reloads_total\{kind="http",result="ok"\} 1/);
    assert.match(text, /sidekey_agent_last_success_timestamp_seconds\{file="password"\}/);
    assert.match(text, /sidekey_agent_backend_calls_total\{provider="file",operation="read"\}/);

    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
    assert.equal(
      await readFile(path.join(dirs.secrets, 'password'), 'utf8'),
      SECRETS[2],
      'files stay after the agent stops',
    );
  });

  void it('signals the reload container once after a rotation', async (t) => {
    const dirs = await workspace(t);
    const container = `e2e-app-${process.pid}`;
    const app = await startReloadApp(container);
    t.after(() => app.child.kill('SIGTERM'));
    const port = await freePort();
    const agent = startAgent(
      t,
      config(dirs, port, { reload: { kind: 'signal', signal: 'SIGHUP', container } }),
      dirs.store,
    );
    await until('/startup', async () => (await status(port, '/startup')) === 200);
    await writeFile(path.join(dirs.store, 'payments/db.yaml'), `username: app\npassword: ${SECRETS[2] ?? ''}\n`);
    await until('the reload', () => Promise.resolve(app.output().includes('main:SIGHUP')));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(app.output().match(/main:SIGHUP/g)?.length, 1);
    assert.doesNotMatch(app.output(), /worker:SIGHUP/);
    assert.match(agent.output(), /"reload":"SIGHUP to pid \d+"/);
  });

  void it('exits 2 on a bad configuration', async (t) => {
    const dirs = await workspace(t);
    const agent = startAgent(t, { ...config(dirs, 1), fileMode: 0o7777 }, dirs.store);
    assert.equal(await agent.exited, 2);
    assert.match(agent.output(), /SIDEKEY_CONFIG is invalid: fileMode/);
  });
});

void describe('sidekey agent (role init)', () => {
  void it('writes once and exits 0', async (t) => {
    const dirs = await workspace(t);
    const agent = startAgent(t, config(dirs, 1, { mode: 'init-only', role: 'init' }), dirs.store);
    assert.equal(await agent.exited, 0);
    assert.equal(await readFile(path.join(dirs.secrets, 'password'), 'utf8'), SECRETS[0]);
  });

  void it('retries for initTimeoutMs, then exits 1 with a one-line reason', async (t) => {
    const dirs = await workspace(t);
    const files: AgentConfig['files'] = [
      { name: 'missing', ref: { provider: 'file', path: 'payments/nope', field: 'x' } },
    ];
    const started = Date.now();
    const agent = startAgent(
      t,
      config(dirs, 1, { mode: 'init-only', role: 'init', files, initTimeoutMs: 2500 }),
      dirs.store,
    );
    assert.equal(await agent.exited, 1);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 2500 && elapsed < 10_000, `exited after ${elapsed} ms`);
    const reason = agent
      .output()
      .split('\n')
      .filter((l) => l.startsWith('sidekey agent: '));
    assert.equal(reason.length, 1);
    assert.match(reason[0] ?? '', /within 2500 ms: missing: NOT_FOUND/);
    assert.ok((agent.output().match(/secret fetch failed/g)?.length ?? 0) >= 2, 'it retried');
  });
});
