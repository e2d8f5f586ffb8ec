// End to end against a real moto server: the `sidekey agent` process with the AWS provider. It checks the
// refresh loop's batching (ceil(N/20) BatchGetSecretValue calls per refresh of N secrets), that a rotation in
// the backend reaches the files at the next refresh and triggers exactly one reload, and that nothing is
// rewritten or reloaded when nothing changed.
import assert from 'node:assert/strict';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentConfig } from '../injector/agent-config.ts';
import { startMoto, type MotoHandle } from '../devkit/backends/moto.ts';
import {
  freePort,
  metrics,
  reloadEndpoint,
  sample,
  startAgent,
  status,
  until,
} from '../agent/testdata/agent-process.ts';

const N = 25;
const value = (i: number, round: number): string => `aws-secret-${round}-${i}-c0ffee`;

let moto: MotoHandle;
before(async () => {
  moto = await startMoto();
  for (let i = 0; i < N; i++) {
    await moto.admin.send(
      new CreateSecretCommand({ Name: `e2e/app-${i}`, SecretString: JSON.stringify({ password: value(i, 0) }) }),
    );
  }
});
after(() => moto.stop());

void describe('sidekey agent with AWS Secrets Manager (moto)', () => {
  void it('batches 25 secrets into 2 calls per refresh, follows a rotation and reloads once', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sidekey-agent-aws-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const reload = await reloadEndpoint(t);
    const port = await freePort();
    const config: AgentConfig = {
      version: 1,
      mode: 'sidecar',
      role: 'run',
      secretsDir: path.join(dir, 'secrets'),
      port,
      fileMode: 0o400,
      files: Array.from({ length: N }, (_, i) => ({
        name: `app-${i}`,
        ref: { provider: 'aws' as const, path: `e2e/app-${i}`, field: 'password' },
        refreshMs: 10_000,
      })),
      reload: { kind: 'http', url: reload.url },
      aws: { region: moto.region },
    };
    const secrets = Array.from({ length: N }, (_, i) => [value(i, 0), value(i, 1)]).flat();
    startAgent(t, config, moto.env, secrets);
    await until('/startup', async () => (await status(port, '/startup')) === 200, 30_000);
    assert.equal(await readFile(path.join(dir, 'secrets/app-7'), 'utf8'), value(7, 0));
    const calls = (text: string): number =>
      sample(text, 'sidekey_agent_backend_calls_total{provider="aws",operation="BatchGetSecretValue"}');
    assert.equal(calls(await metrics(port)), 2, 'ceil(25/20) calls for the first fetch');

    await moto.admin.send(
      new PutSecretValueCommand({ SecretId: 'e2e/app-7', SecretString: JSON.stringify({ password: value(7, 1) }) }),
    );
    await until(
      'the rotated file',
      async () => (await readFile(path.join(dir, 'secrets/app-7'), 'utf8')) === value(7, 1),
      20_000,
    );
    await until('the reload', () => Promise.resolve(reload.posts() === 1), 5000);
    assert.equal(calls(await metrics(port)), 4, 'one more refresh: two more calls');

    await until('a refresh without change', async () => calls(await metrics(port)) === 6, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const text = await metrics(port);
    assert.equal(sample(text, 'sidekey_agent_writes_total{result="ok"}'), 2, 'first write and the rotation only');
    assert.equal(reload.posts(), 1);
  });

  void it('stops on SIGTERM while a call to a black-holed endpoint hangs', async (t) => {
    const hole = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume();
    }).listen(0, '127.0.0.1');
    await once(hole, 'listening');
    t.after(() => hole.close());
    let connected = false;
    hole.on('connection', () => (connected = true));
    const dir = await mkdtemp(path.join(tmpdir(), 'sidekey-agent-aws-hole-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const config: AgentConfig = {
      version: 1,
      mode: 'sidecar',
      role: 'run',
      secretsDir: path.join(dir, 'secrets'),
      port: await freePort(),
      fileMode: 0o400,
      files: [{ name: 'app', ref: { provider: 'aws', path: 'e2e/app-0', field: 'password' } }],
      reload: { kind: 'none' },
      aws: { region: moto.region },
    };
    const agent = startAgent(
      t,
      config,
      { ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${(hole.address() as AddressInfo).port}` },
      [],
    );
    await until('the agent calls the black hole', () => Promise.resolve(connected), 20_000);
    agent.child.kill('SIGTERM');
    // Not a timing assertion: a guard far below the 2-minute backstop the agent used to wait for.
    const guard = new Promise<'still running'>((resolve) =>
      setTimeout(() => {
        resolve('still running');
      }, 20_000).unref(),
    );
    assert.equal(await Promise.race([agent.exited, guard]), 0, `the agent exits 0 on SIGTERM:\n${agent.output()}`);
  });
});
