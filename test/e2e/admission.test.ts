// What a user meets at admission, end to end: a signal reload where the app's UID is stated works (see also
// aws-rotation.test.ts); without a UID the signal is refused with the fix, and an HTTP-reload pod without a UID
// is admitted with a clear warning and runs with world-readable files in its private volume. Bad annotations
// are refused with the message a user needs and nothing runs: no patch, no pod. BAD is a selection of what users
// meet most, through the real webhook; every problem code has its case in injector/fixtures/refused.yaml (and
// SK_CONFIG_TOO_LARGE, SK_TOO_MANY in injector/mutate.test.ts, limits.test.ts and webhook/review.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  admitAndRun,
  appPod,
  appStatus,
  assertNoLeak,
  fingerprint,
  measureRotation,
  startScenarioWebhook,
  waitForStatus,
} from './harness.ts';
import type { ScenarioWebhook } from './harness.ts';
import { createFileStore } from './file-store.ts';
import type { FileStore } from './file-store.ts';

const BAD: readonly (readonly [string, Readonly<Record<string, string>>, string, RegExp])[] = [
  [
    'unknown provider',
    { 'secret-db': 'gcp:prod/db#password' },
    'SK_BAD_REFERENCE',
    /annotation "sidekey\.io\/secret-db": .*provider.*example: sidekey\.io\/secret-db: "aws:prod\/db#password"/,
  ],
  [
    'duration without a unit',
    { 'secret-db': 'file:app/db', refresh: '10' },
    'SK_BAD_DURATION',
    /"sidekey\.io\/refresh": is not a Go-style duration/,
  ],
  [
    'unknown mode',
    { 'secret-db': 'file:app/db', mode: 'daemon' },
    'SK_BAD_MODE',
    /"sidekey\.io\/mode": must be one of sidecar, init-only, not "daemon"/,
  ],
  [
    'the removed classic mode',
    { 'secret-db': 'file:app/db', mode: 'classic' },
    'SK_BAD_MODE',
    /"sidekey\.io\/mode": classic mode was removed: Sidekey needs native sidecars \(Kubernetes 1\.29\+\); use sidecar/,
  ],
  [
    'reload URL off loopback',
    { 'secret-db': 'file:app/db', reload: 'http:http://example.com/reload' },
    'SK_BAD_RELOAD',
    /"sidekey\.io\/reload":/,
  ],
  [
    'path traversal in a file name',
    { 'secret-..': 'file:app/db' },
    'SK_BAD_FILE_NAME',
    /file name must be one path segment/,
  ],
  ['a typo in a key', { 'secret-db': 'file:app/db', refesh: '1h' }, 'SK_UNKNOWN_ANNOTATION', /"sidekey\.io\/refesh"/],
  [
    'a mount over a system path',
    { 'secret-db': 'file:app/db', 'mount-path': '/etc' },
    'SK_BAD_MOUNT_PATH',
    /"sidekey\.io\/mount-path"/,
  ],
  [
    'a template without its secret',
    { 'secret-db': 'file:app/db', 'template-url': 'x{{ .a }}' },
    'SK_ORPHAN_ANNOTATION',
    /"sidekey\.io\/template-url": has no matching "sidekey\.io\/secret-url"/,
  ],
  [
    'a signal without the app UID',
    { 'secret-db': 'file:app/db', reload: 'signal:SIGHUP' },
    'SK_UID_REQUIRED',
    /set securityContext\.runAsUser/,
  ],
];

void describe('e2e: admission as a user meets it', { timeout: 120_000 }, () => {
  let store: FileStore;
  let hook: ScenarioWebhook;

  before(async () => {
    store = createFileStore();
    store.put('app/db', { password: 'pw-1' });
    hook = await startScenarioWebhook({ fileStore: store.dir });
  });
  after(async () => {
    await hook.close();
    store.remove();
  });

  for (const [what, annotations, code, message] of BAD) {
    void it(`refuses ${what} (${code}) and nothing runs`, async () => {
      // A valid secret next to the bad annotation: a pod is injected whole or not at all.
      const answer = await hook.webhook.admit(
        appPod({ name: 'bad', annotations: { inject: 'true', 'secret-ok': 'file:app/db#password', ...annotations } }),
        'e2e',
      );
      assert.ok(!answer.allowed, 'refused');
      assert.ok(!('patch' in answer) && !('pod' in answer), 'no patch: the API server creates nothing');
      assert.ok(answer.codes.includes(code), `codes ${answer.codes.join(',')}`);
      assert.match(answer.message, message);
    });
  }

  void it('admits an HTTP-reload pod with no UID, with a warning that says how to tighten it, and reloads it', async () => {
    const { pod, admission } = await admitAndRun(
      hook.webhook,
      appPod({
        name: 'no-uid',
        annotations: {
          inject: 'true',
          'secret-password': 'file:app/db#password',
          reload: 'http:http://127.0.0.1:8080/reload',
        },
      }),
      { agentBinds: [store.dir] },
    );
    try {
      assert.ok(
        admission.warnings.some((w) => /world-readable \(0444\).*runAsUser.*fsGroup/.test(w)),
        admission.warnings.join('\n'),
      );
      const seen = await waitForStatus(pod, (s) => s.files.password !== undefined, 10_000, 'the password file');
      assert.equal(seen.files.password?.mode, '0444');
      const latency = await measureRotation(
        pod,
        'password',
        () => {
          store.put('app/db', { password: 'pw-2' });
          return Promise.resolve(fingerprint('pw-2'));
        },
        10_000,
      );
      assert.ok(latency < 10_000);
      assert.equal((await appStatus(pod)).reasons.at(-1), 'http');
      assertNoLeak([pod.allLogs(), hook.log()], ['pw-1', 'pw-2']);
    } finally {
      await pod.stop();
    }
  });
});
