// Vault KV v2 (real OpenBao, kubernetes auth with the pod's projected service-account token): a template
// combining two fields into one file; a rotation reaches the running Python app within the refresh interval
// plus two seconds (plus the documented margin of aws-rotation.test.ts), by one HTTP reload, no restart.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { READ_ALL_POLICY, startOpenBao } from '../support/openbao.ts';
import type { KubernetesAuth, OpenBaoHandle } from '../support/openbao.ts';
import type { RunningPod } from '../pod-runner/pod-runner.ts';
import { admitAndRun, appPod, appStatus, assertNoLeak, fingerprint, measureRotation, startScenarioWebhook, summary, waitForStatus } from './harness.ts';
import type { ScenarioWebhook } from './harness.ts';

const REFRESH_MS = 10_000;
const RUN_MARGIN_MS = 3000;
const ROTATIONS = 3;
const TEMPLATE = 'postgres://{{ .username }}:{{ .password }}@db:5432/app';

void describe('e2e: Vault KV v2 rotation with a two-field template', { timeout: 240_000 }, () => {
  let bao: OpenBaoHandle;
  let k8s: KubernetesAuth;
  let hook: ScenarioWebhook;
  let pod: RunningPod | undefined;
  const values: string[] = [];

  before(async () => {
    bao = await startOpenBao();
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    k8s = await bao.setupKubernetes('payments', ['read-all'], 'e2e', 'payments');
    hook = await startScenarioWebhook({ vault: { addr: bao.addr }, minRefresh: '10s' });
  });
  after(async () => {
    await pod?.stop();
    await hook.close();
    await bao.stop();
  });

  void it(`renders username and password into one file and delivers ${ROTATIONS} rotations by HTTP reload`, async (t) => {
    const put = async (): Promise<string> => {
      const password = randomBytes(18).toString('base64url');
      values.push(password);
      await bao.api('POST', 'secret/data/e2e/db', { data: { username: 'payments', password } });
      return fingerprint(`postgres://payments:${password}@db:5432/app`);
    };
    const initial = await put();
    const run = await admitAndRun(
      hook.webhook,
      appPod({
        name: 'payments-kv',
        app: 'python',
        runAsUser: 1000,
        serviceAccount: 'payments',
        annotations: {
          inject: 'true',
          'secret-db-url': 'vault:secret/e2e/db',
          'template-db-url': TEMPLATE,
          refresh: '10s',
          reload: 'http:http://127.0.0.1:8080/reload',
          'vault-role': 'payments',
        },
      }),
      { services: [Number(new URL(bao.addr).port)], serviceAccountToken: (namespace, name) => (namespace === 'e2e' && name === 'payments' ? k8s.token : 'not-this-pod') },
    );
    pod = run.pod;
    const first = await waitForStatus(pod, (s) => s.files['db-url']?.sha256 === initial, 10_000, 'the rendered template');
    assert.equal(first.app, 'python');
    assert.deepEqual(Object.keys(first.files), ['db-url']);

    const latencies: number[] = [];
    for (let i = 0; i < ROTATIONS; i++) latencies.push(await measureRotation(pod, 'db-url', put, REFRESH_MS + 2000 + RUN_MARGIN_MS));
    const { median, worst } = summary(latencies);
    t.diagnostic(`vault kv rotation-to-app latency: median ${median} ms, worst ${worst} ms over ${ROTATIONS} rotations (refresh ${REFRESH_MS} ms)`);
    assert.deepEqual((await appStatus(pod)).reasons, ['start', ...Array<string>(ROTATIONS).fill('http')]);
    assert.ok(k8s.reviewer.reviews() >= 1, 'the agent logged in with the pod\'s service-account token');
    assertNoLeak([pod.allLogs(), hook.log()], [...values, k8s.token]);
  });
});
