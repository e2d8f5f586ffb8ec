// Shared steps of the pod-level scenarios: the real webhook over HTTPS (logs captured), admission of a pod
// exactly as the API server would do it, the pod runner, the stand-in app's observations, rotation timing,
// and the scan of every captured log for the values a test wrote.
import assert from 'node:assert/strict';
import { startLocalWebhook } from '../../devkit/local-webhook.ts';
import type { AdmissionAnswer, LocalWebhook } from '../../devkit/local-webhook.ts';
import type { WebhookConfigInput } from '../../webhook/config.ts';
import { fingerprint } from '../../devkit/apps/secrets-dir.ts';
import type { Status } from '../../devkit/apps/secrets-dir.ts';
import { assertNoLeak } from '../support/no-leak.ts';
import { APP_IMAGES, testImages } from '../../devkit/pod-runner/images.ts';
import type { ImageOptions } from '../../devkit/pod-runner/images.ts';
import { runPod } from '../../devkit/pod-runner/pod-runner.ts';
import type { Pod, RunPodOptions, RunningPod } from '../../devkit/pod-runner/pod-runner.ts';
import { defined } from '../../injector/defined.ts';

export { assertNoLeak, fingerprint };
export type { Status };

export const APP_PORT = 8080;
export const AGENT_PORT = 8099;
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ScenarioWebhook {
  readonly webhook: LocalWebhook;
  /** Everything the webhook logged (pino JSON lines). */
  log(): string;
  close(): Promise<void>;
}

export async function startScenarioWebhook(settings: WebhookConfigInput): Promise<ScenarioWebhook> {
  let log = '';
  const webhook = await startLocalWebhook(
    { ...settings, logLevel: 'debug' },
    { write: (line: string) => void (log += line) },
  );
  return { webhook, log: () => log, close: () => webhook.close() };
}

export interface AppPodOptions {
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly app?: 'node' | 'python';
  readonly runAsUser?: number;
  readonly fsGroup?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** Add the service-account token volume the API server's ServiceAccount admission would add. */
  readonly serviceAccount?: string;
  readonly restartPolicy?: 'Always' | 'Never';
}

/** A one-container pod as a user would write it (annotations get the sidekey.io/ prefix). */
export function appPod(options: AppPodOptions): Pod {
  const annotations = Object.fromEntries(Object.entries(options.annotations).map(([k, v]) => [`sidekey.io/${k}`, v]));
  const sa = options.serviceAccount;
  const securityContext = {
    ...defined({ runAsUser: options.runAsUser }),
    ...defined({ fsGroup: options.fsGroup }),
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: options.name, namespace: 'e2e', annotations },
    spec: {
      terminationGracePeriodSeconds: 5,
      ...defined({ restartPolicy: options.restartPolicy }),
      ...defined({ serviceAccountName: sa }),
      securityContext,
      volumes:
        sa === undefined
          ? []
          : [
              {
                name: 'kube-api-access-e2e',
                projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
              },
            ],
      containers: [
        {
          name: 'app',
          image: options.app === 'python' ? APP_IMAGES.python : APP_IMAGES.node,
          env: Object.entries(options.env ?? {}).map(([name, value]) => ({ name, value })),
          volumeMounts: sa === undefined ? [] : [{ name: 'kube-api-access-e2e', mountPath: SA_DIR, readOnly: true }],
        },
      ],
    },
  };
}

export interface RunOptions extends ImageOptions {
  readonly services?: readonly number[];
  readonly serviceAccountToken?: RunPodOptions['serviceAccountToken'];
}

/** Admits the pod through the webhook (it must be allowed) and runs the patched pod. */
export async function admitAndRun(
  webhook: LocalWebhook,
  pod: Pod,
  options: RunOptions = {},
): Promise<{ pod: RunningPod; admission: AdmissionAnswer & { allowed: true } }> {
  const admission = await webhook.admit(pod, pod.metadata?.namespace);
  assert.ok(admission.allowed, `the webhook refused the pod: ${admission.allowed ? '' : admission.message}`);
  const running = await runPod(admission.pod as Pod, {
    images: testImages(options),
    ...defined({ services: options.services }),
    ...defined({ serviceAccountToken: options.serviceAccountToken }),
  });
  return { pod: running, admission };
}

export async function appStatus(pod: RunningPod): Promise<Status> {
  const answer = await pod.request(APP_PORT, '/status');
  return JSON.parse(answer.body) as Status;
}

/**
 * Reads with `read` every `intervalMs` until `ok` holds for a result, and returns it; a failed read counts as
 * no result. Fails after `timeoutMs` with `what`, the last result and the pod's logs.
 */
export async function waitFor<T>(
  pod: RunningPod,
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  { timeoutMs, intervalMs = 20 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read().catch(() => last);
    if (last !== undefined && ok(last)) return last;
    await sleep(intervalMs);
  }
  assert.fail(`${what}: not seen within ${timeoutMs} ms; last ${JSON.stringify(last)}\n${pod.allLogs()}`);
}

export function waitForStatus(
  pod: RunningPod,
  ok: (s: Status) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Status> {
  return waitFor(pod, what, () => appStatus(pod), ok, { timeoutMs });
}

/**
 * Rotates with `rotate` (which returns the fingerprint file `file` must show next) and measures the time until
 * the running app sees it. Then checks, after a quiet second, that it was the same process with exactly one
 * more reload. Returns the latency in ms.
 */
export async function measureRotation(
  pod: RunningPod,
  file: string,
  rotate: () => Promise<string>,
  timeoutMs: number,
): Promise<number> {
  const before = await appStatus(pod);
  const started = performance.now();
  const expected = await rotate();
  await waitForStatus(pod, (s) => s.files[file]?.sha256 === expected, timeoutMs, `file ${file} with the rotated value`);
  const latency = performance.now() - started;
  await sleep(1000);
  const after = await appStatus(pod);
  assert.equal(after.pid, before.pid, 'the app was not restarted');
  assert.equal(
    after.reloads,
    before.reloads + 1,
    `exactly one reload per rotation (reasons: ${after.reasons.join(',')})`,
  );
  return latency;
}
