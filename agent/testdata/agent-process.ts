// Test helpers for end-to-end runs of the real `sidekey agent` process: start it with a config and env, wait
// for its endpoints, read its metrics, count POSTs to a loopback reload endpoint. Every run's output is
// scanned for the secret values the test names when the test ends.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { AgentConfig } from '../../injector/agent-config.ts';

const SIDEKEY = path.join(import.meta.dirname, '../../cli/sidekey.ts');

export interface AgentProcess {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

/** A sidecar (role run) configuration writing to `secretsDir` with mode 0400 and no reload, plus `over`. */
export function sidecarConfig(secretsDir: string, port: number, over: Partial<AgentConfig>): AgentConfig {
  return {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir,
    port,
    fileMode: 0o400,
    files: [],
    reload: { kind: 'none' },
    ...over,
  };
}

export function startAgent(
  t: TestContext,
  config: AgentConfig,
  env: Readonly<Record<string, string>>,
  secrets: readonly string[],
): AgentProcess {
  const child = spawn(process.execPath, [SIDEKEY, 'agent'], {
    env: { ...process.env, ...env, SIDEKEY_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.after(() => {
    child.kill('SIGKILL');
    for (const secret of secrets) assert.ok(!out.includes(secret), 'a secret value reached the agent output');
  });
  return { child, output: () => out, exited };
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const status = async (port: number, route: string): Promise<number> =>
  (await fetch(`http://127.0.0.1:${port}${route}`)).status;
export const metrics = async (port: number): Promise<string> =>
  (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/** The value of one sample in Prometheus text, 0 when absent. */
export function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** A loopback reload endpoint that counts POSTs. */
export async function reloadEndpoint(t: TestContext): Promise<{ url: string; posts: () => number }> {
  let posts = 0;
  const app = createServer((req, res) => {
    if (req.method === 'POST') posts += 1;
    res.end();
  }).listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.after(() => app.close());
  return { url: `http://127.0.0.1:${(app.address() as AddressInfo).port}/-/reload`, posts: () => posts };
}
