// The agent's lifecycle. role `run` (the native sidecar): fetch and write every file, pass /startup, then
// refresh until SIGTERM. role `init` (init-only): write every file once and return 0, or retry for
// initTimeoutMs and return 1 with a one-line reason.
import { mkdir, open } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../injector/agent-config.ts';
import type { Provider } from '../injector/reference.ts';
import { writeAtomic } from './atomic-writer.ts';
import { createMetrics, type AgentMetrics } from './metrics.ts';
import { startOpsServer, type OpsServer } from './ops-server.ts';
import { ProviderError, type SecretProvider } from './provider.ts';
import { loadProvider } from './providers/index.ts';
import { RefreshLoop } from './refresh-loop.ts';
import { createReloader, type Reloader } from './reload.ts';
import { agentStatus, statusBody } from './status.ts';
import { monotonicClock } from './timing.ts';
import { nodeTimers, type Timers } from './timers.ts';
import type { AgentStatus } from './status-schema.ts';
import { defined } from '../injector/defined.ts';

/** kubelet's default terminationMessagePath: `kubectl describe pod` shows what is written there. */
export const TERMINATION_LOG = '/dev/termination-log';
/** How long role init retries when the config gives no initTimeoutMs. */
export const DEFAULT_INIT_TIMEOUT_MS = 120_000;

export interface AgentOptions {
  readonly config: Readonly<AgentConfig>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  /** Aborting it stops the agent (SIGTERM). */
  readonly stop: AbortSignal;
  /** Revoke leases and the provider's token on shutdown (role run only). */
  readonly revokeOnExit?: boolean;
  /** Overrides config.port (tests use 0). */
  readonly port?: number;
  readonly onListening?: (port: number) => void;
  /** Epoch ms; monotonicClock() by default (a wall-clock step moves no due time). */
  readonly now?: () => number;
  readonly random?: () => number;
  readonly timers?: Timers;
  readonly procRoot?: string;
  /**
   * Where a failed init writes its one-line reason (kubelet's terminationMessagePath); only an existing file is
   * written.
   */
  readonly terminationLog?: string;
  /** Provider loading (the lazy loader by default; tests hand in fakes for fault injection). */
  readonly loadProvider?: typeof loadProvider;
}

async function loadProviders(
  options: AgentOptions,
  metrics: AgentMetrics,
  now: () => number,
): Promise<Map<Provider, SecretProvider>> {
  const names = [...new Set(options.config.files.map((f) => f.ref.provider))];
  const deps = {
    config: options.config,
    env: options.env,
    log: options.log,
    now,
    countCall: (p: Provider, op: string) => {
      metrics.countCall(p, op);
    },
  };
  const loaded = new Map<Provider, SecretProvider>();
  const load = options.loadProvider ?? loadProvider;
  for (const name of names) loaded.set(name, await load(name, { ...deps, log: options.log.child({ provider: name }) }));
  return loaded;
}

function waitFor(signal: AbortSignal): Promise<void> {
  return signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => {
        signal.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
      });
}

/** The one-line reason of a failed start, on stderr and in the termination log (opened r+: never created). */
async function reportFailure(reason: string, terminationLog = TERMINATION_LOG): Promise<void> {
  process.stderr.write(`sidekey agent: ${reason}\n`);
  try {
    const handle = await open(terminationLog, 'r+');
    try {
      await handle.truncate(0);
      await handle.write(`${reason}\n`, 0);
    } finally {
      await handle.close();
    }
  } catch {
    // not in a container (no termination log): stderr is enough
  }
}

interface Running {
  readonly loop: RefreshLoop;
  /** The agent's clock: epoch ms on the monotonic clock unless a test hands one in. */
  readonly now: () => number;
  readonly providers: Map<Provider, SecretProvider>;
  readonly reloader: Reloader;
  /** Epoch ms on the agent's clock. */
  readonly startedAt: number;
  readonly cleanups: (() => Promise<void> | void)[];
}

async function setUp(options: AgentOptions, metrics: AgentMetrics): Promise<Running> {
  const { config, log } = options;
  const now = options.now ?? monotonicClock();
  const timers = options.timers ?? nodeTimers;
  await mkdir(config.secretsDir, { recursive: true });
  const providers = await loadProviders(options, metrics, now);
  const reloader = createReloader(config.reload, {
    log,
    metrics,
    timers,
    clock: now,
    ...defined({ procRoot: options.procRoot }),
  });
  const loop = new RefreshLoop({
    config,
    providers,
    write: async (payload) => {
      const result = await writeAtomic(config.secretsDir, payload, {
        mode: config.fileMode,
        ...defined({ gid: config.fileGroup }),
      });
      if (result.replaced) return 'replaced';
      return result.written ? 'first' : 'unchanged';
    },
    reload: () => {
      reloader.request();
    },
    log,
    metrics,
    now,
    random: options.random ?? Math.random,
    timers,
  });
  return {
    loop,
    now,
    providers,
    reloader,
    startedAt: now(),
    cleanups: [
      () => reloader.idle(),
      () => {
        reloader.close();
      },
    ],
  };
}

async function shutDown(running: Running, options: AgentOptions): Promise<void> {
  await running.loop.stop();
  for (const cleanup of running.cleanups.reverse()) await cleanup();
  if (options.revokeOnExit === true && options.config.role === 'run') {
    const leases = running.loop.leases();
    for (const [name, provider] of running.providers) {
      try {
        await provider.revoke?.(leases.get(name) ?? []);
      } catch (error) {
        options.log.warn(
          { provider: name, code: error instanceof ProviderError ? error.code : 'UNKNOWN' },
          'revoke on exit failed',
        );
      }
    }
  }
  await Promise.all([...running.providers.values()].map((p) => p.close()));
}

async function runInit(running: Running, options: AgentOptions): Promise<number> {
  const timeoutMs = options.config.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS;
  const timers = options.timers ?? nodeTimers;
  let timer: unknown;
  const outcome = await Promise.race([
    running.loop.whenComplete().then(() => 'done' as const),
    new Promise<'timeout'>(
      (resolve) =>
        (timer = timers.setTimeout(() => {
          resolve('timeout');
        }, timeoutMs)),
    ),
    waitFor(options.stop).then(() => 'stopped' as const),
  ]);
  timers.clearTimeout(timer);
  await shutDown(running, options);
  if (outcome === 'done') {
    options.log.info({ files: options.config.files.length }, 'secrets written; init done');
    return 0;
  }
  const why =
    outcome === 'timeout'
      ? `not all secrets could be fetched within ${timeoutMs} ms`
      : 'stopped before all secrets were written';
  const reason = `${why}: ${running.loop.failureSummary() || 'no answer yet'}`;
  options.log.error({ reason }, 'init failed');
  await reportFailure(reason, options.terminationLog);
  return 1;
}

/** What /status reports, read from the loop and the reloader as they are now. */
function snapshot(running: Running, config: Readonly<AgentConfig>): AgentStatus {
  return agentStatus({
    config,
    sources: running.loop.sources,
    writeError: running.loop.writeError,
    reloads: running.reloader.stats(),
    startedAt: running.startedAt,
    now: running.now(),
  });
}

async function runSidecar(running: Running, options: AgentOptions, metrics: AgentMetrics): Promise<number> {
  const { loop, now } = running;
  const server: OpsServer = await startOpsServer(
    options.port ?? options.config.port,
    {
      started: () => loop.complete,
      staleFiles: () => loop.staleFiles(now()),
      statusBody: () => statusBody(snapshot(running, options.config)),
    },
    metrics.registry,
  );
  options.onListening?.(server.port);
  running.cleanups.unshift(() => server.close());
  for (const [name, provider] of running.providers) {
    const unsubscribe = provider.watch?.(() => {
      loop.poke(name);
    });
    if (unsubscribe !== undefined) running.cleanups.push(unsubscribe);
  }
  void loop.whenComplete().then(() => {
    options.log.info(
      { files: options.config.files.length, port: server.port },
      'secrets in place; startup probe passes',
    );
  });
  await waitFor(options.stop);
  options.log.info('stopping');
  await shutDown(running, options);
  return 0;
}

/** Runs the agent until done (init) or stopped (run); resolves to the process exit code. */
export async function runAgent(options: AgentOptions): Promise<number> {
  const metrics = createMetrics();
  let running: Running;
  try {
    running = await setUp(options, metrics);
  } catch (error) {
    const reason =
      error instanceof ProviderError
        ? `${error.code}: ${error.message}`
        : `setup failed: ${error instanceof Error ? error.message : 'unknown error'}`;
    options.log.error({ reason }, 'agent cannot start');
    await reportFailure(reason, options.terminationLog);
    return 1;
  }
  running.loop.start();
  return options.config.role === 'init' ? runInit(running, options) : runSidecar(running, options, metrics);
}
