// The demo's unprivileged fallback (not root, so no namespaces, tmpfs or setpriv): the admitted pod's agent
// and app run as plain processes of the current user. The agent gets the configuration the webhook wrote,
// with three local substitutions: the secrets directory becomes a private temp dir (disk, not tmpfs), its
// port a free one, and the Vault token file a temp file. Everything else is what the pod would run.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAgentConfig } from '../injector/agent-config.ts';
import { AGENT_CONTAINER, CONFIG_ENV } from '../injector/constants.ts';
import { freePort } from '../devkit/process.ts';

const ROOT = resolve(import.meta.dirname, '..');

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath?: string } };
}

interface ContainerLike {
  name: string;
  env?: EnvVar[];
}

interface PodLike {
  metadata?: { name?: string; namespace?: string };
  spec?: { containers?: ContainerLike[]; initContainers?: ContainerLike[] };
}

export interface FallbackOptions {
  readonly agentEnv: Readonly<Record<string, string>>;
  readonly serviceAccountToken?: () => string;
  readonly onLog: (container: string, line: string) => void;
}

export interface FallbackPod {
  readonly agentPort: number;
  readonly appPort: number;
  readonly startedAt: number;
  readonly firstWriteAt: number;
  readonly appStartedAt: number;
  stop(): Promise<void>;
}

function plainEnv(pod: PodLike, container: ContainerLike): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of container.env ?? []) {
    const field = v.valueFrom?.fieldRef?.fieldPath;
    env[v.name] =
      field === 'metadata.name'
        ? (pod.metadata?.name ?? 'demo')
        : field === 'metadata.namespace'
          ? (pod.metadata?.namespace ?? 'default')
          : (v.value ?? '');
  }
  return env;
}

function start(
  command: readonly string[],
  env: Record<string, string>,
  name: string,
  onLog: FallbackOptions['onLog'],
): ChildProcess {
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let partial = '';
  const onData = (chunk: Buffer): void => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLog(name, line);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return child;
}

async function waitOk(url: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not answer ${url} within 60 s`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

export async function runFallback(admitted: unknown, options: FallbackOptions): Promise<FallbackPod> {
  const pod = admitted as PodLike;
  const agent = pod.spec?.initContainers?.find((c) => c.name === AGENT_CONTAINER);
  const app = pod.spec?.containers?.[0];
  if (agent === undefined || app === undefined) throw new Error('the admitted pod has no agent or no app container');
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-demo-'));
  const agentEnv = plainEnv(pod, agent);
  const parsed = parseAgentConfig(agentEnv[CONFIG_ENV] ?? '');
  if (!parsed.ok) throw new Error(parsed.error);
  const agentPort = await freePort();
  const appPort = await freePort();
  const vault = parsed.value.vault;
  if (vault !== undefined && options.serviceAccountToken !== undefined)
    writeFileSync(join(dir, 'sa-token'), options.serviceAccountToken(), { mode: 0o600 });
  const config = {
    ...parsed.value,
    secretsDir: join(dir, 'secrets'),
    port: agentPort,
    ...(vault === undefined ? {} : { vault: { ...vault, tokenFile: join(dir, 'sa-token') } }),
  };
  const node = join(ROOT, 'node_modules', '.bin', 'node');
  const startedAt = Date.now();
  const agentProcess = start(
    [node, join(ROOT, 'cli', 'sidekey.ts'), 'agent'],
    { ...options.agentEnv, ...agentEnv, [CONFIG_ENV]: JSON.stringify(config) },
    AGENT_CONTAINER,
    options.onLog,
  );
  let appProcess: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (appProcess !== undefined) await stopChild(appProcess);
    await stopChild(agentProcess);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitOk(`http://127.0.0.1:${agentPort}/startup`, agentProcess, AGENT_CONTAINER);
    const firstWriteAt = Date.now();
    appProcess = start(
      [node, join(ROOT, 'devkit', 'apps', 'reader.ts')],
      { ...plainEnv(pod, app), APP_SECRETS_DIR: join(dir, 'secrets'), APP_PORT: String(appPort) },
      app.name,
      options.onLog,
    );
    const appStartedAt = Date.now();
    await waitOk(`http://127.0.0.1:${appPort}/status`, appProcess, app.name);
    return { agentPort, appPort, startedAt, firstWriteAt, appStartedAt, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
