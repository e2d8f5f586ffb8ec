// Shared plumbing for the real servers the tests start: free loopback ports, a child process whose output
// is kept (bounded) for error messages, readiness polling and a stop() that always reaps the child.
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { TOOLS_DIR } from '../scripts/setup-tools.ts';

export { TOOLS_DIR };
export const VENV_BIN = join(TOOLS_DIR, 'venv', 'bin');

/** Returns the path of a tool installed by the project's setup, or throws with the fix. */
export function requireTool(path: string, what: string): string {
  if (!existsSync(path)) {
    throw new Error(`${what} is missing (${path}): run "npm run setup" (node scripts/setup-tools.ts) first`);
  }
  return path;
}

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last 64 KiB of stdout+stderr, for error messages when a start fails. */
  output(): string;
  /** Resolves when the process has exited (immediately when it already has). */
  exited(): Promise<void>;
  /** stopSignal (default SIGTERM), then SIGKILL after graceMs; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const OUTPUT_LIMIT = 64 * 1024;

export function startProcess(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
  stopSignal: NodeJS.Signals = 'SIGTERM',
): ManagedProcess {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exit = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    child.once('exit', () => {
      resolveExit();
    });
    child.once('error', (error) => {
      append(Buffer.from(`spawn failed: ${error.message}\n`));
      resolveExit();
    });
  });
  const running = (): boolean => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  // A test process that crashes must not leave servers behind: kill the child when this process exits.
  const reap = (): void => {
    if (running()) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  void exit.then(() => process.removeListener('exit', reap));
  return {
    child,
    pid: child.pid ?? -1,
    output: () => output,
    exited: () => exit,
    async stop(graceMs = 5000): Promise<void> {
      if (!running()) return exit;
      child.kill(stopSignal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it returns true; throws with the process output when the process dies or time runs out. */
export async function waitUntil(
  what: string,
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${what} exited early (code ${String(proc.child.exitCode)}):\n${proc.output()}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`${what} did not become ready within ${timeoutMs} ms:\n${proc.output()}`);
}

/** True when GET url answers at all (any status). */
export async function answers(url: string, init?: RequestInit): Promise<boolean> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
  await response.body?.cancel();
  return response.status > 0;
}
