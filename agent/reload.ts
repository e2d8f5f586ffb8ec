// Tells the app that its files changed, after a write: `signal:<SIG>` to the main process of the reload
// container (see process-finder.ts), or `http:<loopback url>` as a POST with a timeout and retries. Requests
// are debounced, so one refresh batch (or a burst of store changes) gives exactly one reload. A failure is
// counted and logged, never fatal: the files are already in place for an app that re-reads them itself.
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { ReloadSpec } from '../injector/agent-config.ts';
import { errnoOf } from './errno.ts';
import type { AgentMetrics } from './metrics.ts';
import { findMainProcess, stillSameProcess } from './process-finder.ts';
import type { Timers } from './refresh-loop.ts';

export const RELOAD_DEBOUNCE_MS = 500;
const HTTP_TIMEOUT_MS = 5000;
const HTTP_ATTEMPTS = 3;
const HTTP_RETRY_MS = 500;

export interface ReloadDeps {
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly timers: Timers;
  readonly fetch?: typeof fetch;
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
  readonly procRoot?: string;
  readonly debounceMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface Reloader {
  /** Asks for a reload; requests within the debounce window are merged. */
  request(): void;
  /** Waits for a pending or running reload. */
  idle(): Promise<void>;
  close(): void;
}

class ReloadFailure extends Error {
  override readonly name = 'ReloadFailure';
}

async function sendSignal(spec: Extract<ReloadSpec, { kind: 'signal' }>, deps: ReloadDeps): Promise<string> {
  const signal = spec.signal as NodeJS.Signals;
  if (!(signal in constants.signals)) throw new ReloadFailure(`unknown signal ${spec.signal}`);
  const target = await findMainProcess(spec.container, deps.procRoot);
  if (target === undefined) throw new ReloadFailure(`no process of container "${spec.container}" found (shareProcessNamespace and the same UID are needed)`);
  if (!(await stillSameProcess(target, spec.container, deps.procRoot))) throw new ReloadFailure(`process ${target.pid} exited before the signal`);
  try {
    (deps.kill ?? process.kill)(target.pid, signal);
  } catch (error) {
    throw new ReloadFailure(`kill(${target.pid}, ${signal}) failed: ${errnoOf(error) ?? 'unknown'}`);
  }
  return `${signal} to pid ${target.pid}`;
}

async function postOnce(url: string, doFetch: typeof fetch): Promise<void> {
  let status: number;
  try {
    const response = await doFetch(url, { method: 'POST', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await response.body?.cancel();
    status = response.status;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error && 'code' in error.cause ? String(error.cause.code) : error instanceof Error ? error.name : 'error';
    throw new ReloadFailure(`POST failed: ${cause}`);
  }
  if (status < 200 || status > 299) throw new ReloadFailure(`POST answered HTTP ${status}`);
}

async function postReload(url: string, deps: ReloadDeps): Promise<string> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => deps.timers.setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      await postOnce(url, deps.fetch ?? fetch);
      return `POST ${url}`;
    } catch (error) {
      if (attempt >= HTTP_ATTEMPTS) throw error;
      await sleep(HTTP_RETRY_MS * 2 ** (attempt - 1));
    }
  }
}

export function createReloader(spec: ReloadSpec, deps: ReloadDeps): Reloader {
  let timer: unknown;
  let running: Promise<void> | undefined;
  let pending = false;
  let waiters: (() => void)[] = [];

  async function reloadNow(): Promise<void> {
    if (spec.kind === 'none') return;
    try {
      const what = spec.kind === 'signal' ? await sendSignal(spec, deps) : await postReload(spec.url, deps);
      deps.metrics.reloads.inc({ kind: spec.kind, result: 'ok' });
      deps.log.info({ reload: what }, 'app reloaded');
    } catch (error) {
      deps.metrics.reloads.inc({ kind: spec.kind, result: 'failed' });
      deps.log.warn({ reason: error instanceof ReloadFailure ? error.message : 'unexpected error' }, 'app reload failed');
    }
  }

  function fire(): void {
    timer = undefined;
    if (running !== undefined) {
      pending = true;
      return;
    }
    running = reloadNow().finally(() => {
      running = undefined;
      if (pending) {
        pending = false;
        fire();
      } else if (timer === undefined) {
        for (const resolve of waiters.splice(0)) resolve();
      }
    });
  }

  return {
    request() {
      if (spec.kind === 'none') return;
      deps.timers.clearTimeout(timer);
      timer = deps.timers.setTimeout(fire, deps.debounceMs ?? RELOAD_DEBOUNCE_MS);
    },
    idle() {
      if (timer === undefined && running === undefined) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      deps.timers.clearTimeout(timer);
      timer = undefined;
      waiters.forEach((resolve) => {
        resolve();
      });
      waiters = [];
    },
  };
}
