// The Vault token of one agent: logged in on first use, kept alive in the background, replaced when it dies.
// - the token is renewed with renew-self at ~2/3 of its TTL plus jitter (Vault's lifetime-watcher rule, shared
//   with lease planning in agent/timing.ts), on the agent's timer interface (background timers by default);
// - when renewals stop extending it (near its max TTL) or it is not renewable, the session logs in again
//   before it expires; failed renewals are retried with backoff, and a token found dead logs in again;
// - a 403 on a call made through withToken drops the token, logs in again and retries once (unless the token
//   is brand new: then it is a policy problem and the 403 stands);
// - a new token after the first one is reported through watch(onChange): Vault revokes a token's leases with
//   it, so dynamic credentials must be fetched again under the new token.
import * as z from 'zod/mini';
import type { VaultSettings } from '../../../injector/agent-config.ts';
import type { ProviderDeps } from '../../../agent/provider.ts';
import { backoffDelay, planLease } from '../../../agent/timing.ts';
import { backgroundTimers, type Timers } from '../../../agent/timers.ts';
import { login, renewSelf } from './vault-auth.ts';
import { VaultCallError } from './vault-client.ts';
import type { VaultClient } from './vault-client.ts';
import { fromVaultError, revokeQuietly } from './vault-errors.ts';

/** A 403 within this time of a login is a policy problem, not a stale token. */
const FRESH_TOKEN_MS = 5_000;

export interface VaultSessionOptions {
  readonly timers?: Timers;
  readonly random?: () => number;
}

/** What the KV and lease reader needs of the session. */
export interface TokenSource {
  /** Runs an authenticated call; a 403 with a token that is not brand new logs in again and retries once. */
  withToken<T>(call: (token: string) => Promise<T>): Promise<T>;
}

interface TokenState {
  readonly token: string;
  readonly ttlMs: number;
  readonly issuedTtlMs: number;
  readonly renewable: boolean;
  /** Epoch ms of the login or the last renewal. */
  readonly renewedAt: number;
  readonly issuedAt: number;
}

type Upkeep = 'renew' | 'refetch';

interface RetryPlan {
  /** The token is dead (403, or past its expiry): it is dropped and replaced. */
  readonly dead: boolean;
  /** Vault will not renew it any more ("past the max TTL", "not renewable"): log in now instead. */
  readonly spent: boolean;
  readonly inMs: number;
}

/** When and how to retry after a failed renewal or login: a live token is retried before it runs out. */
function planRetry(
  error: unknown,
  state: TokenState | undefined,
  failures: number,
  now: () => number,
  random: () => number,
): RetryPlan {
  const expiresAt = state === undefined ? 0 : state.renewedAt + state.ttlMs;
  const dead = (error instanceof VaultCallError && error.status === 403) || now() >= expiresAt;
  const spent = error instanceof VaultCallError && /max TTL|not renewable/i.test(error.message);
  const backoff = spent ? 0 : backoffDelay(failures, random());
  // Never later than half of what is left.
  return { dead, spent, inMs: dead ? backoff : Math.min(backoff, Math.max((expiresAt - now()) / 2, 1000)) };
}

export class VaultSession implements TokenSource {
  readonly #client: VaultClient;
  readonly #settings: Readonly<VaultSettings>;
  readonly #deps: Pick<ProviderDeps, 'log' | 'now'>;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #watchers = new Set<() => void>();
  #current: TokenState | undefined;
  #pending: Promise<TokenState> | undefined;
  #logins = 0;
  #timer: unknown;
  #failures = 0;
  #closed = false;

  constructor(
    client: VaultClient,
    settings: Readonly<VaultSettings>,
    deps: Pick<ProviderDeps, 'log' | 'now'>,
    options: VaultSessionOptions = {},
  ) {
    this.#client = client;
    this.#settings = settings;
    this.#deps = deps;
    this.#timers = options.timers ?? backgroundTimers;
    this.#random = options.random ?? Math.random;
  }

  async withToken<T>(call: (token: string) => Promise<T>): Promise<T> {
    const state = await this.#token();
    try {
      return await call(state.token);
    } catch (error) {
      if (
        !(error instanceof VaultCallError) ||
        error.status !== 403 ||
        this.#deps.now() - state.issuedAt < FRESH_TOKEN_MS
      )
        throw error;
      this.#deps.log.info('vault answered 403; logging in again');
      this.#invalidate(state);
      const fresh = await this.#token();
      return call(fresh.token);
    }
  }

  /**
   * Shutdown clean-up: runs `first` with the current token (the leases it holds), then revokes the token itself
   * (best-effort) and drops it. A token given to us (token auth) belongs to someone else and is not revoked.
   */
  async retire(first: (token: string) => Promise<void>): Promise<void> {
    const state = this.#current;
    if (state === undefined) return;
    await first(state.token);
    if (this.#settings.auth !== 'token') {
      await revokeQuietly(this.#deps.log, 'token', () =>
        this.#client.write('auth/token/revoke-self', {}, state.token, z.unknown()),
      );
    }
    this.#invalidate(state);
  }

  /** Calls onChange after every login but the first (the old token's leases are gone). Returns an unsubscribe. */
  watch(onChange: () => void): () => void {
    this.#watchers.add(onChange);
    return () => this.#watchers.delete(onChange);
  }

  close(): void {
    this.#closed = true;
    this.#stopTimer();
  }

  #token(): Promise<TokenState> {
    return this.#current === undefined ? this.#relogin() : Promise.resolve(this.#current);
  }

  /** One login at a time; the new token replaces the current one only when the login succeeded. */
  #relogin(): Promise<TokenState> {
    this.#pending ??= this.#login().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #login(): Promise<TokenState> {
    let token;
    try {
      token = await login(this.#client, this.#settings);
    } catch (error) {
      throw fromVaultError(error, true);
    }
    const now = this.#deps.now();
    const state: TokenState = {
      token: token.token,
      ttlMs: token.ttlMs,
      issuedTtlMs: token.ttlMs,
      renewable: token.renewable,
      renewedAt: now,
      issuedAt: now,
    };
    this.#current = state;
    this.#failures = 0;
    this.#logins += 1;
    this.#deps.log.info(
      { auth: this.#settings.auth, ttlSeconds: Math.round(token.ttlMs / 1000), renewable: token.renewable },
      'vault login',
    );
    this.#schedule(state);
    if (this.#logins > 1) for (const onChange of this.#watchers) onChange();
    return state;
  }

  /** Drops `state` if it is still the current token (a concurrent call may have replaced it already). */
  #invalidate(state: TokenState): void {
    if (this.#current === state) {
      this.#current = undefined;
      this.#stopTimer();
    }
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(state: TokenState): void {
    this.#stopTimer();
    if (this.#closed || state.ttlMs === 0) return;
    const now = this.#deps.now();
    const lease = {
      id: 'token',
      durationMs: state.ttlMs,
      renewable: state.renewable,
      renewedAt: state.renewedAt,
      issuedAt: state.issuedAt,
    };
    const plan = planLease(lease, state.issuedTtlMs, now, this.#random());
    this.#timer = this.#timers.setTimeout(() => void this.#maintain(plan.action), plan.at - now);
  }

  /** The timer's work: renew the token, or log in anew (before max TTL, or after the token died). */
  async #maintain(action: Upkeep): Promise<void> {
    const state = this.#current;
    this.#timer = undefined;
    if (this.#closed || (state === undefined && action === 'renew')) return;
    try {
      if (action === 'refetch' || state === undefined) {
        await this.#relogin();
        return;
      }
      const renewed = await renewSelf(this.#client, state.token);
      this.#current = { ...state, ttlMs: renewed.ttlMs, renewable: renewed.renewable, renewedAt: this.#deps.now() };
      this.#failures = 0;
      this.#schedule(this.#current);
    } catch (error) {
      this.#upkeepFailed(error, state, action);
    }
  }

  #upkeepFailed(error: unknown, state: TokenState | undefined, action: Upkeep): void {
    this.#failures += 1;
    const mapped = fromVaultError(error, action === 'refetch');
    const retry = planRetry(error, state, this.#failures, this.#deps.now, this.#random);
    const replace = retry.dead || retry.spent;
    this.#deps.log.warn(
      { code: mapped.code, error: mapped.message, attempt: this.#failures, action },
      replace ? 'vault token is spent; logging in again' : 'vault token renewal failed; retrying',
    );
    // A dead token (revoked, expired) is replaced now: its leases died with it and must be fetched again.
    if (retry.dead && state !== undefined) this.#invalidate(state);
    if (!this.#closed)
      this.#timer = this.#timers.setTimeout(() => void this.#maintain(replace ? 'refetch' : action), retry.inMs);
  }
}
