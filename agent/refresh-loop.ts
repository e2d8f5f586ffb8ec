// The refresh loop: one timer for the earliest due source; at each wake it fetches every due source (plus
// same-provider sources due within their jitter window, so backends see batches: ceil(N/20) AWS calls for N
// secrets), renews due leases, renders, writes the whole set once when any file changed, and then asks for ONE
// reload. Failures back off exponentially with jitter per source and never touch the files on disk.
import type { Logger } from 'pino';
import type { AgentConfig } from '../injector/agent-config.ts';
import type { Provider } from '../injector/reference.ts';
import type { AgentMetrics } from './metrics.ts';
import { ProviderError } from './provider.ts';
import type { FetchOutcome, Lease, SecretProvider } from './provider.ts';
import { renderFile } from './render.ts';
import { RenderError } from './render-error.ts';
import { WriterError } from './atomic-writer.ts';
import { buildSources, staleLimit, type FileState, type Source } from './sources.ts';
import { backoffDelay, clampDelay, INTERVAL_JITTER, jitteredInterval, planExpiry, planLease } from './timing.ts';
import type { Timers } from './timers.ts';

/**
 * `replaced` means the write swapped out an earlier set, one of this process's or one a restarted sidecar finds on
 * the volume (the app has been running on it): either way the app must reload.
 */
export type WriteOutcome = 'unchanged' | 'first' | 'replaced';

export interface WriteFailure {
  /** The WriterError code, or the errno of an unexpected failure. */
  readonly code: string;
  /** Epoch ms. */
  readonly at: number;
  readonly failures: number;
}

export interface LoopDeps {
  readonly config: Readonly<AgentConfig>;
  readonly providers: ReadonlyMap<Provider, SecretProvider>;
  /** Writes the whole set atomically and says what changed on disk. */
  readonly write: (payload: ReadonlyMap<string, Uint8Array>) => Promise<WriteOutcome>;
  /** Asks for one (debounced) app reload. */
  readonly reload: () => void;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly now: () => number;
  readonly random: () => number;
  readonly timers: Timers;
}

/** Events within this window (a watcher's burst) are handled in one round. */
const POKE_DEBOUNCE_MS = 50;
/**
 * A backend call that has not answered by then counts as UNAVAILABLE, so one hung connection cannot stall the
 * loop (and with it every other secret) for good. Providers have their own, shorter timeouts; this is the
 * backstop. A late answer is dropped.
 */
export const BACKEND_CALL_TIMEOUT_MS = 120_000;

function errorCode(error: unknown): string {
  if (error instanceof ProviderError || error instanceof RenderError) return error.code;
  return 'UNKNOWN';
}

function errorMessage(error: unknown): string {
  return error instanceof ProviderError || error instanceof RenderError ? error.message : 'unexpected error';
}

function changed(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined || b === undefined || !Buffer.from(a).equals(b);
}

export class RefreshLoop {
  readonly #deps: LoopDeps;
  readonly #sources: Source[];
  #timer: unknown;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Aborted by stop(): backend calls still in flight are given up, so a hung call cannot hold SIGTERM. */
  readonly #stopping = new AbortController();
  #writeFailures = 0;
  #retryWriteAt: number | undefined;
  /** Why the last write failed, for init's exit reason; cleared by a write that lands. */
  #lastWriteError: string | undefined;
  /** Its code and time, for /status. */
  #writeError: Omit<WriteFailure, 'failures'> | undefined;
  #complete = false;
  readonly #onComplete: (() => void)[] = [];

  constructor(deps: LoopDeps) {
    this.#deps = deps;
    this.#sources = buildSources(deps.config, deps.now());
  }

  get sources(): readonly Source[] {
    return this.#sources;
  }

  /** True once every file has been written at least once. */
  get complete(): boolean {
    return this.#complete;
  }

  /** Resolves when the first complete set is on disk. */
  whenComplete(): Promise<void> {
    return this.#complete ? Promise.resolve() : new Promise((resolve) => this.#onComplete.push(resolve));
  }

  start(): void {
    this.#schedule();
  }

  /**
   * A backend said something changed (the file store's watch; Vault after a new login, which revokes the old
   * token's leases): fetch its sources now, leased ones included.
   */
  poke(provider: Provider): void {
    const now = this.#deps.now();
    for (const source of this.#sources) {
      // A certificate outlives the token it was issued with (no lease): re-issuing it would only churn the app.
      if (source.provider !== provider || source.expiresAt !== undefined) continue;
      source.next = 'fetch';
      source.dueAt = Math.min(source.dueAt, now + POKE_DEBOUNCE_MS);
    }
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort();
    this.#deps.timers.clearTimeout(this.#timer);
    await this.#running;
  }

  /** The last write's failure while no write has landed since (for /status). */
  get writeError(): WriteFailure | undefined {
    return this.#writeError === undefined ? undefined : { ...this.#writeError, failures: this.#writeFailures };
  }

  /** Leases currently held, by provider (for optional revocation at shutdown). */
  leases(): Map<Provider, Lease[]> {
    const out = new Map<Provider, Lease[]>();
    for (const s of this.#sources)
      if (s.lease !== undefined) out.set(s.provider, [...(out.get(s.provider) ?? []), s.lease]);
    return out;
  }

  /** Files whose data on disk is older than their threshold (or not written yet). */
  staleFiles(now: number): string[] {
    const stale: string[] = [];
    for (const source of this.#sources) {
      const limit = staleLimit(this.#deps.config, source);
      for (const f of source.files) if (f.goodAt === undefined || now - f.goodAt > limit) stale.push(f.spec.name);
    }
    return stale;
  }

  /** One line naming each failing file and its error code (init's exit reason). */
  failureSummary(): string {
    const failing = this.#sources.filter(
      (s) => s.lastError !== undefined && s.files.some((f) => f.written === undefined),
    );
    const reasons = failing.map((s) => `${s.files.map((f) => f.spec.name).join(',')}: ${s.lastError ?? ''}`);
    if (this.#lastWriteError !== undefined) reasons.push(this.#lastWriteError);
    return reasons.join('; ');
  }

  #schedule(): void {
    if (this.#stopped || this.#running !== undefined) return;
    this.#deps.timers.clearTimeout(this.#timer);
    let wake = Math.min(...this.#sources.map((s) => s.dueAt));
    if (this.#retryWriteAt !== undefined) wake = Math.min(wake, this.#retryWriteAt);
    this.#timer = this.#deps.timers.setTimeout(
      () => {
        this.#running = this.#tick().finally(() => {
          this.#running = undefined;
          this.#schedule();
        });
      },
      clampDelay(wake - this.#deps.now()),
    );
  }

  async #tick(): Promise<void> {
    const now = this.#deps.now();
    const due = this.#sources.filter(
      (s) =>
        s.dueAt <= now ||
        (s.next === 'fetch' &&
          s.failures === 0 &&
          s.lease === undefined &&
          s.dueAt <= now + s.intervalMs * INTERVAL_JITTER),
    );
    const random = this.#deps.random();
    try {
      await Promise.all([
        ...this.#byProvider(due.filter((s) => s.next === 'fetch')).map(([p, group]) =>
          this.#fetchGroup(p, group, random),
        ),
        ...due.filter((s) => s.next === 'renew').map((s) => this.#renew(s)),
      ]);
      await this.#writeIfChanged();
    } catch (error) {
      this.#deps.log.error({ code: errorCode(error) }, 'refresh round failed');
    }
  }

  #byProvider(sources: readonly Source[]): [Provider, Source[]][] {
    const groups = new Map<Provider, Source[]>();
    for (const s of sources) groups.set(s.provider, [...(groups.get(s.provider) ?? []), s]);
    return [...groups];
  }

  async #fetchGroup(providerName: Provider, group: readonly Source[], random: number): Promise<void> {
    const provider = this.#deps.providers.get(providerName);
    const started = this.#deps.now();
    let outcomes: readonly FetchOutcome[];
    try {
      if (provider === undefined) throw new ProviderError('CONFIG', `provider ${providerName} is not loaded`);
      outcomes = await this.#bounded(providerName, provider.fetchMany(group.map((s) => s.ref)));
    } catch (error) {
      const known =
        error instanceof ProviderError ? error : new ProviderError('UNAVAILABLE', `${providerName}: fetch failed`);
      outcomes = group.map((s) => ({ ok: false, ref: s.ref, error: known }));
    }
    this.#deps.metrics.fetchDuration.observe({ provider: providerName }, (this.#deps.now() - started) / 1000);
    const now = this.#deps.now();
    await Promise.all(
      group.map(async (source, i) => {
        const outcome = outcomes[i] ?? {
          ok: false,
          ref: source.ref,
          error: new ProviderError('BAD_RESPONSE', `${providerName}: no answer for a reference`),
        };
        if (outcome.ok) await this.#accept(source, outcome.fetched, now, random);
        else this.#fail(source, outcome.error, now);
      }),
    );
  }

  async #accept(
    source: Source,
    fetched: Extract<FetchOutcome, { ok: true }>['fetched'],
    now: number,
    random: number,
  ): Promise<void> {
    let rendered: Uint8Array[];
    try {
      rendered = await Promise.all(source.files.map((f) => renderFile(f.spec, fetched.value)));
    } catch (error) {
      this.#fail(source, error, now);
      return;
    }
    source.files.forEach((f, i) => (f.bytes = rendered[i]));
    if (source.version !== undefined && source.version !== fetched.version) {
      this.#deps.log.info(
        { source: source.key, files: source.files.map((f) => f.spec.name) },
        'secret version changed',
      );
    }
    source.version = fetched.version;
    if (fetched.displayVersion === undefined) delete source.displayVersion;
    else source.displayVersion = fetched.displayVersion;
    source.fetchedAt = now;
    source.failures = 0;
    delete source.lastError;
    if (fetched.expiresAt === undefined) delete source.expiresAt;
    else source.expiresAt = fetched.expiresAt;
    delete source.lastErrorCode;
    delete source.lastErrorAt;
    if (fetched.lease === undefined) {
      delete source.lease;
      delete source.issuedDurationMs;
    } else {
      source.lease = fetched.lease;
      source.issuedDurationMs = fetched.lease.durationMs;
    }
    this.#planNext(source, now, random);
  }

  #planNext(source: Source, from: number, random: number): void {
    const now = this.#deps.now();
    if (source.lease === undefined) {
      source.next = 'fetch';
      source.dueAt =
        source.expiresAt === undefined
          ? from + jitteredInterval(source.intervalMs, random)
          : planExpiry(source.expiresAt, from, random);
      return;
    }
    const renewable = source.lease.renewable && this.#deps.providers.get(source.provider)?.renewLease !== undefined;
    const plan = planLease(
      { ...source.lease, renewable },
      source.issuedDurationMs ?? source.lease.durationMs,
      now,
      random,
    );
    source.next = plan.action === 'renew' ? 'renew' : 'fetch';
    source.dueAt = plan.at;
  }

  /** Records a failure and plans the next fetch: after a backoff, or now (`backoff` false: a lease to replace). */
  #fail(source: Source, error: unknown, now: number, backoff = true): void {
    const code = errorCode(error);
    if (backoff) source.failures += 1;
    source.lastError = `${code} (${errorMessage(error)})`;
    source.lastErrorCode = code;
    source.lastErrorAt = now;
    source.next = 'fetch';
    source.dueAt = backoff
      ? now + Math.min(backoffDelay(source.failures, this.#deps.random()), Math.max(source.intervalMs, 1000))
      : now;
    this.#deps.metrics.fetchErrors.inc({ provider: source.provider, code });
    const retryInMs = Math.round(source.dueAt - now);
    this.#deps.log.warn(
      { source: source.key, code, error: errorMessage(error), failures: source.failures, retryInMs },
      backoff ? 'secret fetch failed' : 'lease renewal failed; fetching a new credential',
    );
  }

  async #renew(source: Source): Promise<void> {
    const provider = this.#deps.providers.get(source.provider);
    const lease = source.lease;
    if (provider?.renewLease === undefined || lease === undefined) return;
    try {
      source.lease = await this.#bounded(source.provider, provider.renewLease(lease));
      const now = this.#deps.now();
      source.fetchedAt = now;
      for (const f of source.files) if (f.written !== undefined) f.goodAt = now;
      this.#deps.metrics.leaseRenewals.inc({ provider: source.provider, result: 'ok' });
      this.#planNext(source, now, this.#deps.random());
    } catch (error) {
      this.#deps.metrics.leaseRenewals.inc({ provider: source.provider, result: 'failed' });
      // A lease that cannot be renewed is replaced: fetch a new credential now (with backoff if that fails too).
      this.#fail(source, error, this.#deps.now(), false);
    }
  }

  #bounded<T>(provider: Provider, call: Promise<T>): Promise<T> {
    let timer: unknown;
    let onStop: (() => void) | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#deps.timers.setTimeout(() => {
        reject(new ProviderError('UNAVAILABLE', `${provider}: no answer within ${BACKEND_CALL_TIMEOUT_MS} ms`));
      }, BACKEND_CALL_TIMEOUT_MS);
      onStop = () => {
        reject(new ProviderError('UNAVAILABLE', `${provider}: the agent is stopping`));
      };
      if (this.#stopping.signal.aborted) onStop();
      else this.#stopping.signal.addEventListener('abort', onStop, { once: true });
    });
    return Promise.race([call, timeout]).finally(() => {
      this.#deps.timers.clearTimeout(timer);
      if (onStop !== undefined) this.#stopping.signal.removeEventListener('abort', onStop);
    });
  }

  async #writeIfChanged(): Promise<void> {
    const files = this.#sources.flatMap((s) => s.files);
    if (files.some((f) => f.bytes === undefined)) return;
    const dirty = files.filter((f) => changed(f.bytes, f.written));
    const now = this.#deps.now();
    for (const s of this.#sources)
      for (const f of s.files) if (!dirty.includes(f) && s.fetchedAt !== undefined) f.goodAt = s.fetchedAt;
    this.#updateGauges(files);
    if (dirty.length === 0) return;
    const hadPrevious = this.#complete;
    try {
      const outcome = await this.#deps.write(new Map(files.map((f) => [f.spec.name, f.bytes ?? new Uint8Array()])));
      this.#writeFailures = 0;
      this.#retryWriteAt = undefined;
      this.#lastWriteError = undefined;
      this.#writeError = undefined;
      this.#markWritten();
      this.#updateGauges(files);
      this.#deps.metrics.writes.inc({ result: outcome === 'unchanged' ? 'unchanged' : 'ok' });
      this.#deps.log.info(
        { files: dirty.map((f) => f.spec.name) },
        hadPrevious || outcome === 'replaced' ? 'secrets updated' : 'secrets written',
      );
      this.#checkComplete();
      if (outcome === 'replaced') this.#deps.reload();
    } catch (error) {
      this.#writeFailed(error, dirty, hadPrevious, now);
    }
  }

  /** Plans a retry with backoff; the files on disk are untouched (the writer never removes the last good set). */
  #writeFailed(error: unknown, dirty: readonly FileState[], hadPrevious: boolean, now: number): void {
    this.#writeFailures += 1;
    this.#retryWriteAt = now + backoffDelay(this.#writeFailures, this.#deps.random());
    this.#deps.metrics.writes.inc({ result: 'failed' });
    const errno =
      error instanceof Error && 'errno' in error && typeof error.errno === 'string' ? error.errno : undefined;
    const reported = error instanceof WriterError ? { code: error.code, error: error.message } : {};
    this.#writeError = { code: error instanceof WriterError ? error.code : (errno ?? 'WRITE_FAILED'), at: now };
    this.#lastWriteError = `write ${error instanceof WriterError ? `${error.code} (${error.message})` : (errno ?? 'failed')}`;
    this.#deps.log.error(
      { ...reported, errno, files: dirty.map((f) => f.spec.name), retryInMs: Math.round(this.#retryWriteAt - now) },
      hadPrevious
        ? 'writing secrets failed; the last good files stay in place'
        : 'writing secrets failed; no files are in place yet',
    );
  }

  /** What the landed write put on disk: the content, the fetch behind it, a certificate's expiry. */
  #markWritten(): void {
    for (const s of this.#sources)
      for (const f of s.files) {
        f.written = f.bytes;
        if (s.fetchedAt !== undefined) f.goodAt = s.fetchedAt;
        if (s.expiresAt !== undefined)
          this.#deps.metrics.certificateExpiry.set({ file: f.spec.name }, s.expiresAt / 1000);
      }
  }

  #updateGauges(files: readonly FileState[]): void {
    for (const f of files)
      if (f.goodAt !== undefined) this.#deps.metrics.lastSuccess.set({ file: f.spec.name }, f.goodAt / 1000);
  }

  #checkComplete(): void {
    if (this.#complete || this.#sources.some((s) => s.files.some((f) => f.written === undefined))) return;
    this.#complete = true;
    for (const resolve of this.#onComplete.splice(0)) resolve();
  }
}
