// Backend outage during refresh (real moto behind a loopback proxy that drops every connection on demand):
// the running app keeps its last good files and is not reloaded, the agent's /readyz reports the stale file
// once it is older than its staleness threshold (3 refresh intervals), and when the backend returns the agent
// recovers by itself: ready again, and a rotation made during the outage reaches the app with one reload.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { startFaultProxy } from '../support/fault-proxy.ts';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { startMoto } from '../../devkit/backends/moto.ts';
import type { MotoHandle } from '../../devkit/backends/moto.ts';
import type { RunningPod } from '../../devkit/pod-runner/pod-runner.ts';
import {
  AGENT_PORT,
  admitAndRun,
  appPod,
  appStatus,
  assertNoLeak,
  fingerprint,
  startScenarioWebhook,
  waitFor,
  waitForStatus,
} from './harness.ts';
import type { ScenarioWebhook } from './harness.ts';

const REFRESH_MS = 10_000;
const STALE_MS = 3 * REFRESH_MS;

async function waitForReady(pod: RunningPod, status: number, timeoutMs: number): Promise<string> {
  const answer = await waitFor(
    pod,
    `/readyz answering ${status}`,
    () => pod.request(AGENT_PORT, '/readyz'),
    (a) => a.status === status,
    { timeoutMs, intervalMs: 250 },
  );
  return answer.body;
}

void describe('e2e: backend outage during refresh', { timeout: 240_000 }, () => {
  let moto: MotoHandle;
  let proxy: FaultProxy;
  let hook: ScenarioWebhook;
  let pod: RunningPod | undefined;

  before(async () => {
    moto = await startMoto();
    proxy = await startFaultProxy(moto.endpoint);
    hook = await startScenarioWebhook({ aws: { region: moto.region }, minRefresh: '10s' });
  });
  after(async () => {
    await pod?.stop();
    await hook.close();
    await proxy.stop();
    await moto.stop();
  });

  void it('keeps the last good files, reports staleness, and recovers by itself', async () => {
    const proxyPort = Number(new URL(proxy.url).port);
    await moto.admin.send(
      new CreateSecretCommand({ Name: 'e2e/outage', SecretString: JSON.stringify({ password: 'before-outage-4c1d' }) }),
    );
    const run = await admitAndRun(
      hook.webhook,
      appPod({
        name: 'outage',
        runAsUser: 1000,
        annotations: {
          inject: 'true',
          'secret-password': 'aws:e2e/outage#password',
          refresh: '10s',
          reload: 'signal:SIGHUP',
        },
      }),
      { agentEnv: { ...moto.env, AWS_ENDPOINT_URL: proxy.url }, services: [proxyPort] },
    );
    pod = run.pod;
    await waitForStatus(
      pod,
      (s) => s.files.password?.sha256 === fingerprint('before-outage-4c1d'),
      10_000,
      'the first value',
    );
    await waitForReady(pod, 200, 10_000);

    proxy.setFault({ kind: 'close' });
    await moto.admin.send(
      new PutSecretValueCommand({
        SecretId: 'e2e/outage',
        SecretString: JSON.stringify({ password: 'after-outage-9e2a' }),
      }),
    );
    const body = await waitForReady(pod, 503, STALE_MS + 2 * REFRESH_MS);
    assert.match(body, /stale: .*password/);
    const during = await appStatus(pod);
    assert.equal(during.files.password?.sha256, fingerprint('before-outage-4c1d'), 'the last good file is kept');
    assert.equal(during.reloads, 0, 'no reload without a change');
    assert.ok(proxy.operations().length > 1, 'the agent kept trying');

    proxy.setFault({ kind: 'pass' });
    const recovered = await waitForStatus(
      pod,
      (s) => s.files.password?.sha256 === fingerprint('after-outage-9e2a'),
      90_000,
      'the value rotated during the outage',
    );
    assert.deepEqual([recovered.pid, recovered.reloads], [during.pid, 1]);
    await waitForReady(pod, 200, 10_000);
    const metrics = await pod.request(AGENT_PORT, '/metrics');
    assert.match(metrics.body, /sidekey_agent_fetch_errors_total\{[^}]*code="UNAVAILABLE"[^}]*\} [1-9]/);
    assertNoLeak([pod.allLogs(), hook.log(), metrics.body], ['before-outage-4c1d', 'after-outage-9e2a']);
  });
});
