// Jobs and one-shot pods: a Job in sidecar mode completes (the native sidecar is stopped after the app exits);
// an init-only pod gets its files with no sidecar at all; an init-only pod whose secret does not exist yet
// holds its app back until the secret appears. Embedded file store, no server needed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runPod } from '../pod-runner/pod-runner.ts';
import { testImages } from '../pod-runner/images.ts';
import type { Pod } from '../pod-runner/pod-runner.ts';
import { admitAndRun, appPod, assertNoLeak, fingerprint, sleep, startScenarioWebhook, waitForStatus } from './harness.ts';
import type { ScenarioWebhook } from './harness.ts';
import { createFileStore } from './file-store.ts';
import type { FileStore } from './file-store.ts';

void describe('e2e: Jobs and init-only pods', { timeout: 120_000 }, () => {
  let store: FileStore;
  let hook: ScenarioWebhook;
  const token = 'tok-7d1f0c2b9e';

  before(async () => {
    store = createFileStore();
    store.put('batch/api', { token });
    hook = await startScenarioWebhook({ fileStore: store.dir });
  });
  after(async () => {
    await hook.close();
    store.remove();
  });

  void it('completes a Job in sidecar mode: the app exits 0, then the agent is stopped', async () => {
    const job = appPod({ name: 'report', restartPolicy: 'Never', runAsUser: 2000, env: { APP_ONCE: '1', APP_EXPECT: 'token' }, annotations: { inject: 'true', 'secret-token': 'file:batch/api#token' } });
    const { pod, admission } = await admitAndRun(hook.webhook, job, { agentBinds: [store.dir] });
    try {
      assert.equal((admission.pod as Pod).spec?.initContainers?.[0]?.restartPolicy, 'Always', 'the agent is a native sidecar');
      assert.equal(await pod.completion(60_000), 'Succeeded', pod.allLogs());
      assert.equal(pod.exitCode('app'), 0);
      assert.equal(pod.exitCode('sidekey-agent'), 0, 'the agent stops cleanly on SIGTERM');
      assert.match(pod.logs('app'), new RegExp(`token:${fingerprint(token)}`));
      assertNoLeak([pod.allLogs(), hook.log()], [token]);
    } finally {
      await pod.stop();
    }
  });

  void it('runs an init-only pod: files written once, no sidecar left running', async () => {
    const oneShot = appPod({ name: 'migrate', runAsUser: 2000, annotations: { inject: 'true', mode: 'init-only', 'secret-token': 'file:batch/api#token' } });
    const { pod, admission } = await admitAndRun(hook.webhook, oneShot, { agentBinds: [store.dir] });
    try {
      const spec = (admission.pod as Pod).spec!;
      assert.deepEqual(spec.initContainers?.map((c) => [c.name, c.restartPolicy]), [['sidekey-agent', undefined]]);
      assert.equal(spec.containers.length, 1);
      assert.equal(pod.exitCode('sidekey-agent'), 0, 'the init container wrote and exited');
      const status = await waitForStatus(pod, (s) => s.files.token !== undefined, 10_000, 'the token file');
      assert.equal(status.files.token?.sha256, fingerprint(token));
      assert.equal(status.files.token.mode, '0400');
      assertNoLeak([pod.allLogs(), hook.log()], [token]);
    } finally {
      await pod.stop();
    }
  });

  void it('holds an init-only pod while its secret is missing, and starts the app once it exists', async () => {
    const late = appPod({ name: 'late', runAsUser: 2000, annotations: { inject: 'true', mode: 'init-only', 'secret-token': 'file:batch/late#token' } });
    const admission = await hook.webhook.admit(late, 'e2e');
    assert.ok(admission.allowed);
    const events: string[] = [];
    const starting = runPod(admission.pod as Pod, { images: testImages({ agentBinds: [store.dir] }), onEvent: (e) => events.push(`${e.container}:${e.what}`) });
    await sleep(3000);
    assert.deepEqual(events, ['sidekey-agent:started'], 'the app waits for the init container');
    store.put('batch/late', { token });
    const pod = await starting;
    try {
      assert.match(pod.logs('sidekey-agent'), /NOT_FOUND/, 'the agent reported why it waited');
      assert.deepEqual(events, ['sidekey-agent:started', 'sidekey-agent:exited', 'app:started']);
      assert.equal(pod.exitCode('sidekey-agent'), 0);
      const status = await waitForStatus(pod, (s) => s.files.token !== undefined, 10_000, 'the late secret');
      assert.equal(status.files.token?.sha256, fingerprint(token));
      assertNoLeak([pod.allLogs(), hook.log()], [token]);
    } finally {
      await pod.stop();
    }
  });
});
