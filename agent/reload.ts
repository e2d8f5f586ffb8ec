// Tells the app that its files changed, after a write: `signal:<SIG>` to the main process of the reload
// container (see process-finder.ts), or `http:<loopback url>` as a POST with a timeout and retries. Requests
// are debounced, so one refresh batch (or a burst of store changes) gives exactly one reload, and the debounce
// has a maximum wait, so changes arriving faster than the debounce cannot postpone the reload for ever. A
// failure is counted and logged, never fatal: the files are already in place for an app that re-reads them.
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { ReloadSpec } from '../injector/agent-config.ts';
import { unreachable } from '../injector/unreachable.ts';
import { errnoOf } from './errno.ts';
import type { AgentMetrics } from './metrics.ts';
import { findMainProcess, stillSameProcess } from './process-finder.ts';
import type { Timers } from './timers.ts';

export const RELOAD_DEBOUNCE_MS = 500;
/** While requests keep coming, a reload still happens at least this long after the first of them. */
export const RELOAD_MAX_WAIT_MS = 3000;
const HTTP_TIMEOUT_MS = 5000;
const HTTP_ATTEMPTS = 3;
const HTTP_RETRY_MS = 500;

export interface ReloadDeps {
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly timers: Timers;
  /** Monotonic milliseconds (performance.now by default): the debounce's maximum wait is measured with it. */
  readonly now?: () => number;
  /** Epoch ms for the time of the last reload in stats() (the agent's clock; Date.now by default). */
  readonly clock?: () => number;
  readonly post?: PostFn;
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
  readonly procRoot?: string;
  readonly debounceMs?: number;
  readonly maxWaitMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface Reloader {
  /** Asks for a reload; requests within the debounce window are merged. */
  request(): void;
  /** Waits for a pending or running reload. */
  idle(): Promise<void>;
  close(): void;
  /** Reloads sent so far, for /status. */
  stats(): ReloadStats;
}

export interface ReloadStats {
  readonly ok: number;
  readonly failed: number;
  /** The latest reload: when it ended (epoch ms) and how. */
  readonly last?: { readonly at: number; readonly result: ReloadResult };
}

type ReloadResult = 'ok' | 'failed';

class ReloadFailure extends Error {
  override readonly name = 'ReloadFailure';
}

async function sendSignal(spec: Extract<ReloadSpec, { kind: 'signal' }>, deps: ReloadDeps): Promise<string> {
  const signal = spec.signal as NodeJS.Signals;
  if (!(signal in constants.signals)) throw new ReloadFailure(`unknown signal ${spec.signal}`);
  const target = await findMainProcess(spec.container, deps.procRoot);
  if (target === undefined)
    throw new ReloadFailure(
      `no process of container "${spec.container}" found (shareProcessNamespace and the same UID are needed)`,
    );
  if (!(await stillSameProcess(target, spec.container, deps.procRoot)))
    throw new ReloadFailure(`process ${target.pid} exited before the signal`);
  try {
    (deps.kill ?? process.kill)(target.pid, signal);
  } catch (error) {
    throw new ReloadFailure(`kill(${target.pid}, ${signal}) failed: ${errnoOf(error) ?? 'unknown'}`);
  }
  return `${signal} to pid ${target.pid}`;
}

// Not fetch(): Node's fetch is its bundled undici, 13-15 MiB of private memory for the agent's life from the
// first reload on. Not `import ... from 'node:http'` either (see ops-server.ts). Redirects are never followed:
// node:http does not, and a 3xx counts as a failure, so a POST can never leave the pod.
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The request options of a loopback http URL; anything else is a ReloadFailure. The webhook refuses the rest at
 * admission: https too, since the agent has no CA for an app's loopback certificate, and the POST never leaves
 * the pod.
 */
export function loopbackTarget(text: string): RequestOptions {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ReloadFailure('the reload URL is not a URL');
  }
  if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.has(url.hostname)) {
    throw new ReloadFailure('the reload URL must be http on 127.0.0.1, localhost or [::1]');
  }
  const host = url.hostname === '[::1]' ? '::1' : url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
  return {
    host,
    port: url.port === '' ? undefined : Number(url.port),
    path: `${url.pathname}${url.search}`,
    method: 'POST',
    headers: { 'content-length': '0' },
  };
}

export type PostFn = (text: string, timeoutMs: number) => Promise<number>;

/** One POST with an empty body; resolves to the status code, rejects with a ReloadFailure naming the cause. */
export const postStatus: PostFn = (text, timeoutMs) => {
  const options = loopbackTarget(text);
  const { request } = process.getBuiltinModule('node:http') as {
    request: (o: RequestOptions, cb: (res: IncomingMessage) => void) => ClientRequest;
  };
  return new Promise((resolve, reject) => {
    const req = request({ ...options, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new ReloadFailure(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error: Error) => {
      reject(
        error instanceof ReloadFailure
          ? error
          : new ReloadFailure(`POST failed: ${'code' in error ? String(error.code) : error.name}`),
      );
    });
    req.end();
  });
};

async function postOnce(url: string, post: PostFn): Promise<void> {
  const status = await post(url, HTTP_TIMEOUT_MS);
  if (status >= 300 && status <= 399)
    throw new ReloadFailure(`POST answered HTTP ${status}; redirects are not followed`);
  if (status < 200 || status > 299) throw new ReloadFailure(`POST answered HTTP ${status}`);
}

async function postReload(url: string, deps: ReloadDeps): Promise<string> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => deps.timers.setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      await postOnce(url, deps.post ?? postStatus);
      return `POST ${url}`;
    } catch (error) {
      if (attempt >= HTTP_ATTEMPTS) throw error;
      await sleep(HTTP_RETRY_MS * 2 ** (attempt - 1));
    }
  }
}

/** Sends the reload; returns what was done, for the log. */
async function sendReload(spec: Exclude<ReloadSpec, { kind: 'none' }>, deps: ReloadDeps): Promise<string> {
  switch (spec.kind) {
    case 'signal':
      return sendSignal(spec, deps);
    case 'http':
      return postReload(spec.url, deps);
    default:
      return unreachable(spec, 'reload kind');
  }
}

/** One reload, counted and logged; a failure is logged, not thrown (the next change tries again). */
async function reloadNow(spec: Exclude<ReloadSpec, { kind: 'none' }>, deps: ReloadDeps): Promise<ReloadResult> {
  try {
    const what = await sendReload(spec, deps);
    deps.metrics.reloads.inc({ kind: spec.kind, result: 'ok' });
    deps.log.info({ reload: what }, 'app reloaded');
    return 'ok';
  } catch (error) {
    deps.metrics.reloads.inc({ kind: spec.kind, result: 'failed' });
    deps.log.warn({ reason: error instanceof ReloadFailure ? error.message : 'unexpected error' }, 'app reload failed');
    return 'failed';
  }
}

export function createReloader(spec: ReloadSpec, deps: ReloadDeps): Reloader {
  let timer: unknown;
  /** When the first request not yet served by a reload came (monotonic ms). */
  let firstAt: number | undefined;
  const now = deps.now ?? (() => performance.now());
  let running: Promise<void> | undefined;
  let pending = false;
  let waiters: (() => void)[] = [];
  let stats: ReloadStats = { ok: 0, failed: 0 };

  function fire(): void {
    timer = undefined;
    firstAt = undefined;
    if (running !== undefined) {
      pending = true;
      return;
    }
    if (spec.kind === 'none') return;
    const record = (result: ReloadResult): void => {
      stats = { ...stats, [result]: stats[result] + 1, last: { at: (deps.clock ?? Date.now)(), result } };
    };
    running = reloadNow(spec, deps)
      .then(record)
      .finally(() => {
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
      const at = now();
      firstAt ??= at;
      const untilMax = firstAt + (deps.maxWaitMs ?? RELOAD_MAX_WAIT_MS) - at;
      timer = deps.timers.setTimeout(fire, Math.max(0, Math.min(deps.debounceMs ?? RELOAD_DEBOUNCE_MS, untilMax)));
    },
    idle() {
      if (timer === undefined && running === undefined) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    stats: () => stats,
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
