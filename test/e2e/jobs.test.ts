// One-shot pods on the pod runner: an init-only pod whose secret does not exist yet holds its app back until the
// secret appears (the runner reports when each container starts). Jobs in sidecar and init-only mode run on the
// real cluster (test/cluster/e2e.test.ts). Embedded file store, no server needed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runPod } from '../../devkit/pod-runner/pod-runner.ts';
import { testImages } from '../../devkit/pod-runner/images.ts';
import type { Pod } from '../../devkit/pod-runner/pod-runner.ts';
import { appPod, assertNoLeak, fingerprint, startScenarioWebhook, waitForStatus } from './harness.ts';
import type { ScenarioWebhook } from './harness.ts';
import { createFileStore } from './file-store.ts';
import type { FileStore } from './file-store.ts';

void describe('e2e: an init-only pod waits for its secret', { timeout: 120_000 }, () => {
  let store: FileStore;
  let hook: ScenarioWebhook;
  const token = 'tok-7d1f0c2b9e';

  before(async () => {
    store = createFileStore();
    hook = await startScenarioWebhook({ fileStore: store.dir });
  });
  after(async () => {
    await hook.close();
    store.remove();
  });

  void it('holds an init-only pod while its secret is missing, and starts the app once it exists', async () => {
    const late = appPod({
      name: 'late',
      runAsUser: 2000,
      annotations: { inject: 'true', mode: 'init-only', 'secret-token': 'file:batch/late#token' },
    });
    const admission = await hook.webhook.admit(late, 'e2e');
    assert.ok(admission.allowed);
    const events: string[] = [];
    let reportedMissing: () => void = () => undefined;
    const missing = new Promise<void>((resolve) => (reportedMissing = resolve));
    const starting = runPod(admission.pod as Pod, {
      images: testImages({ agentBinds: [store.dir] }),
      onEvent: (e) => events.push(`${e.container}:${e.what}`),
      onLog: (container, line) => {
        if (container === 'sidekey-agent' && line.includes('NOT_FOUND')) reportedMissing();
      },
    });
    // Wait for the agent's own report that the secret is missing (a fixed sleep is too short on a loaded machine).
    await missing;
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
