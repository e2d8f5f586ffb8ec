// `sidekey demo [--backend file|vault|aws] [--rotations N]`: the whole flow on this machine, narrated.
// A secret store, the real webhook over HTTPS, admission of an example pod (with a readable summary of the
// patch), the pod run by the local pod runner (as root: namespaces, tmpfs, setpriv; otherwise agent and app
// as plain processes), then live rotations that the running app picks up without a restart, and a summary.
// It stops by itself and removes everything it created. Secret values are never printed, only fingerprints.
import { parseArgs } from 'node:util';
import { AGENT_CONTAINER, ANNOTATION_PREFIX } from '../injector/constants.ts';
import { SA_TOKEN_DIR } from '../injector/identity.ts';
import { BACKENDS, renderedUrl, startBackend } from './demo-backends.ts';
import type { BackendName, DemoBackend } from './demo-backends.ts';
import { describePatch } from './demo-patch.ts';
import { startLocalWebhook } from '../devkit/local-webhook.ts';
import type { LocalWebhook } from '../devkit/local-webhook.ts';
import type { Status } from '../devkit/apps/secrets-dir.ts';
import { defined } from '../injector/defined.ts';

const APP_PORT = 8080;
const ROTATION_TIMEOUT_MS = 30_000;

const USAGE = `usage: sidekey demo [--backend file|vault|aws] [--rotations N] [--verbose]

Runs Sidekey end to end on this machine: a secret store, the webhook, an admitted pod, live rotations.
  --backend    file (default: the embedded store, no external service), vault (OpenBao) or aws (moto);
               vault and aws need the tools "npm run setup" installs
  --rotations  how many times to rotate the password (default 2)
  --verbose    also print the agent's and the app's log lines
`;

interface Running {
  readonly how: string;
  readonly startedAt: number;
  readonly firstWriteAt: number;
  readonly appStartedAt: number;
  status(): Promise<Status>;
  stop(): Promise<void>;
}

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const ms = (n: number): string => `${Math.round(n)} ms`;
const sleep = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));

function demoPod(backend: DemoBackend, appImage: string): Record<string, unknown> {
  const annotations: Record<string, string> = {
    [`${ANNOTATION_PREFIX}inject`]: 'true',
    [`${ANNOTATION_PREFIX}reload`]: 'signal:SIGHUP',
  };
  for (const [key, value] of Object.entries(backend.annotations)) annotations[ANNOTATION_PREFIX + key] = value;
  const saVolume =
    backend.serviceAccountToken === undefined
      ? []
      : [
          {
            name: 'kube-api-access-demo',
            projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
          },
        ];
  const saMount =
    saVolume.length === 0 ? [] : [{ name: 'kube-api-access-demo', mountPath: SA_TOKEN_DIR, readOnly: true }];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'demo-app', namespace: 'default', annotations },
    spec: {
      serviceAccountName: 'demo',
      terminationGracePeriodSeconds: 5,
      securityContext: { runAsUser: 1000, runAsGroup: 1000 },
      volumes: saVolume,
      containers: [{ name: 'app', image: appImage, ports: [{ containerPort: APP_PORT }], volumeMounts: saMount }],
    },
  };
}

async function runWithRunner(
  admitted: unknown,
  backend: DemoBackend,
  onLog: (c: string, l: string) => void,
): Promise<Running> {
  const { runPod } = await import('../devkit/pod-runner/pod-runner.ts');
  const { testImages } = await import('../devkit/pod-runner/images.ts');
  const token = backend.serviceAccountToken;
  const pod = await runPod(admitted as Parameters<typeof runPod>[0], {
    images: testImages({ agentEnv: backend.agentEnv, agentBinds: backend.agentBinds }),
    services: backend.services,
    ...(token === undefined ? {} : { serviceAccountToken: () => token() }),
    onLog,
  });
  const at = (container: string, what: string): number =>
    pod.events.find((e) => e.container === container && e.what === what)?.at ?? Number.NaN;
  return {
    how: 'the local pod runner: mount, network and PID namespaces, a real tmpfs, setpriv to uid 1000',
    startedAt: at(AGENT_CONTAINER, 'started'),
    firstWriteAt: at(AGENT_CONTAINER, 'startup-probe-passed'),
    appStartedAt: at('app', 'started'),
    status: async () => JSON.parse((await pod.request(APP_PORT, '/status')).body) as Status,
    stop: () => pod.stop(),
  };
}

async function runUnprivileged(
  admitted: unknown,
  backend: DemoBackend,
  onLog: (c: string, l: string) => void,
): Promise<Running> {
  const { runFallback } = await import('./demo-fallback.ts');
  const token = backend.serviceAccountToken;
  const pod = await runFallback(admitted, {
    agentEnv: backend.agentEnv,
    onLog,
    ...defined({ serviceAccountToken: token }),
  });
  return {
    how: 'plain processes (not root: no namespaces or tmpfs; the files go to a private temp dir)',
    startedAt: pod.startedAt,
    firstWriteAt: pod.firstWriteAt,
    appStartedAt: pod.appStartedAt,
    status: async () => (await fetch(`http://127.0.0.1:${pod.appPort}/status`)).json() as Promise<Status>,
    stop: () => pod.stop(),
  };
}

async function statusWhen(running: Running, ok: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  let last: Status | undefined;
  while (Date.now() < deadline) {
    last = await running.status().catch(() => last);
    if (last !== undefined && ok(last)) return last;
    await sleep(20);
  }
  throw new Error(
    `the app did not see the expected files within ${timeoutMs} ms (last seen: ${JSON.stringify(last?.files ?? {})})`,
  );
}

function fingerprints(backend: DemoBackend, fingerprint: (s: string) => string): { password: string; url: string } {
  const value = backend.current();
  return { password: fingerprint(value.password), url: fingerprint(renderedUrl(value)) };
}

interface Story {
  backend: DemoBackend;
  webhook: LocalWebhook;
  readonly rotations: number;
  readonly verbose: boolean;
  readonly timings: [string, number][];
  running?: Running;
}

type Fingerprint = (text: string) => string;

async function tell(story: Story): Promise<void> {
  const { APP_IMAGES } = await import('../devkit/pod-runner/images.ts');
  const { fingerprint } = await import('../devkit/apps/secrets-dir.ts');
  const admitted = await tellAdmission(story, demoPod(story.backend, APP_IMAGES.node));
  const running = await tellRun(story, admitted, fingerprint);
  for (let i = 1; i <= story.rotations; i++) await tellRotation(story, running, i, fingerprint);
}

/** (3) The pod the API server would send, and what the webhook's patch adds. */
async function tellAdmission(story: Story, pod: ReturnType<typeof demoPod>): Promise<unknown> {
  out('\n(3) Admission: the API server would send this pod to the webhook');
  for (const [k, v] of Object.entries((pod.metadata as { annotations: Record<string, string> }).annotations))
    out(`      ${k}: ${v}`);
  const answer = await story.webhook.admit(pod);
  if (!answer.allowed) throw new Error(`the webhook refused the demo pod: ${answer.message}`);
  story.timings.push(['admission (HTTPS round trip)', answer.ms]);
  out(`    admitted in ${ms(answer.ms)}; the webhook's JSON patch (${answer.patch.length} operations) adds:`);
  for (const line of describePatch(answer.patch, answer.pod)) out(`      ${line}`);
  for (const w of answer.warnings) out(`    warning: ${w}`);
  return answer.pod;
}

/** (4) Runs the admitted pod and checks the app reads what the store holds. */
async function tellRun(story: Story, pod: unknown, fingerprint: Fingerprint): Promise<Running> {
  const { backend, timings } = story;
  out('\n(4) Running the admitted pod');
  const onLog = (container: string, line: string): void => {
    if (story.verbose || (container === 'app' && line.startsWith('app(')))
      out(`      [${container}] ${line.slice(0, 200)}`);
  };
  const root = process.getuid?.() === 0;
  const running = root ? await runWithRunner(pod, backend, onLog) : await runUnprivileged(pod, backend, onLog);
  story.running = running;
  out(`    with ${running.how}`);
  out(
    `    ${AGENT_CONTAINER} started, startup probe passed after ${ms(running.firstWriteAt - running.startedAt)} (first complete write); app started ${ms(running.appStartedAt - running.firstWriteAt)} later`,
  );
  timings.push(['agent start to first complete write', running.firstWriteAt - running.startedAt]);
  const expected = fingerprints(backend, fingerprint);
  const first = await statusWhen(running, (s) => s.files.password?.sha256 === expected.password, ROTATION_TIMEOUT_MS);
  const pw = first.files.password;
  out(
    `    the app (pid ${first.pid}, uid ${first.uid}) reads password sha256:${String(pw?.sha256)} (mode ${String(pw?.mode)}, owner uid ${String(pw?.uid)}) and db-url sha256:${String(first.files['db-url']?.sha256)}`,
  );
  out(`    both match the store (${backend.refreshNote})`);
  return running;
}

/** (5) One rotation: the store changes and the same app process reloads once. */
async function tellRotation(story: Story, running: Running, i: number, fingerprint: Fingerprint): Promise<void> {
  const before = await running.status();
  out(`\n(5) Rotation ${i}/${story.rotations}: a new password is written to the store`);
  const rotatedAt = performance.now();
  await story.backend.rotate();
  const next = fingerprints(story.backend, fingerprint);
  const after = await statusWhen(
    running,
    (s) => s.files.password?.sha256 === next.password && s.files['db-url']?.sha256 === next.url,
    ROTATION_TIMEOUT_MS,
  );
  const latency = performance.now() - rotatedAt;
  story.timings.push([`rotation ${i}: store write to app reloaded`, latency]);
  await sleep(500);
  const settled = await running.status();
  const reloads = settled.reloads - before.reloads;
  const samePid = settled.pid === before.pid;
  out(
    `    the app reloaded after ${ms(latency)}: ${after.reasons.at(-1) ?? '?'} to the same process (pid ${settled.pid}: ${samePid ? 'no restart' : 'RESTARTED'}), ${reloads} reload${reloads === 1 ? '' : 's'}`,
  );
  out(`    password sha256:${next.password} and db-url sha256:${next.url} match the store`);
  if (!samePid || reloads !== 1)
    throw new Error(`expected one reload of the same process, saw ${reloads} reloads, same pid: ${String(samePid)}`);
}

async function cleanUp(story: Partial<Story>): Promise<void> {
  const report =
    (what: string) =>
    (e: unknown): void => {
      out(`    (stopping the ${what}: ${(e as Error).message})`);
    };
  await story.running?.stop().catch(report('pod'));
  await story.webhook?.close().catch(report('webhook'));
  await story.backend?.stop().catch(report('store'));
}

interface DemoArgs {
  readonly backend: BackendName;
  readonly rotations: number;
  readonly verbose: boolean;
}

/** The demo's options, or the exit code of a usage answer (0 for --help, 2 for a mistake). */
function readArgs(argv: readonly string[]): DemoArgs | number {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      options: {
        backend: { type: 'string', default: 'file' },
        rotations: { type: 'string', default: '2' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`sidekey demo: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    out(USAGE);
    return 0;
  }
  const backend = args.values.backend;
  const rotations = Number(args.values.rotations);
  if (
    !(BACKENDS as readonly string[]).includes(backend) ||
    !Number.isInteger(rotations) ||
    rotations < 1 ||
    rotations > 50
  ) {
    process.stderr.write(`sidekey demo: --backend must be file, vault or aws and --rotations 1..50\n${USAGE}`);
    return 2;
  }
  return { backend: backend as BackendName, rotations, verbose: args.values.verbose };
}

/** (1) and (2): the secret store and the webhook, then the rest of the story. */
async function runStory(
  story: Partial<Story> & { readonly timings: [string, number][] },
  backendName: BackendName,
): Promise<number> {
  const { timings } = story;
  out(
    `Sidekey demo: secrets from a store into a running pod's memory, rotated without a restart (backend: ${backendName})`,
  );
  out('\n(1) Starting the secret store');
  let t = performance.now();
  story.backend = await startBackend(backendName);
  timings.push(['secret store start', performance.now() - t]);
  out(`    ${story.backend.description}`);
  out('\n(2) Starting the webhook (the real HTTPS server, a throwaway certificate)');
  t = performance.now();
  story.webhook = await startLocalWebhook(story.backend.settings);
  timings.push(['webhook start', performance.now() - t]);
  out(`    listening on ${story.webhook.url}`);
  await tell(story as Story);
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  const args = readArgs(argv);
  if (typeof args === 'number') return args;
  const wall = performance.now();
  const timings: [string, number][] = [];
  const story: Partial<Story> & { readonly timings: [string, number][] } = {
    timings,
    rotations: args.rotations,
    verbose: args.verbose,
  };
  const interrupted = new Promise<number>((resolve) => {
    process.once('SIGINT', () => {
      resolve(130);
    });
  });
  let code: number;
  try {
    code = await Promise.race([runStory(story, args.backend), interrupted]);
  } catch (error) {
    out(`\nThe demo failed: ${(error as Error).message}`);
    code = 1;
  }
  out('\n(6) Cleaning up: pod, webhook, store');
  await cleanUp(story);
  out('\nSummary');
  for (const [what, n] of timings) out(`    ${what.padEnd(44)} ${ms(n).padStart(9)}`);
  out(`    ${'demo wall time'.padEnd(44)} ${ms(performance.now() - wall).padStart(9)}`);
  out(code === 0 ? '\nDone: the app got every new value live, with one reload each and no restart.' : '');
  return code;
}
