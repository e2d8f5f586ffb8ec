// Pure scheduling arithmetic for the refresh loop: interval jitter and floor, error backoff, lease renewal
// times, and Node's timer limit. Randomness comes in as a number in [0, 1) so tests pin it.
import { REFRESH_FLOOR_MS } from '../injector/constants.ts';
import type { Lease } from './provider.ts';

/** setTimeout fires after 1 ms for any delay above 2^31-1 ms (about 24.8 days); every delay is clamped to this. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Refresh interval when the file gives none (the AWS and Vault KV default; dynamic leases follow their TTL). */
export const DEFAULT_REFRESH_MS = 3_600_000;
/** Intervals are shortened by up to this fraction so that pods started together spread their calls. */
export const INTERVAL_JITTER = 0.1;
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 300_000;

/**
 * Epoch milliseconds that advance with the monotonic clock: read from the wall clock once, then moved only by
 * performance.now(). Due times, fetch times and lease ages are kept on it, so a wall-clock step (NTP, a VM
 * resumed, a node's clock set back) neither stalls the refresh nor lets a lease expire unrenewed.
 */
export function monotonicClock(
  wallNow: () => number = Date.now,
  monotonicNow: () => number = () => performance.now(),
): () => number {
  const offset = wallNow() - monotonicNow();
  return () => offset + monotonicNow();
}

export function clampDelay(ms: number): number {
  if (Number.isNaN(ms) || ms < 0) return 0;
  return Math.min(Math.ceil(ms), MAX_TIMER_MS);
}

/** The effective interval: the requested one (or the default) raised to the floor. */
export function effectiveInterval(requestedMs: number | undefined): number {
  return Math.max(requestedMs ?? DEFAULT_REFRESH_MS, REFRESH_FLOOR_MS);
}

/** The next refresh delay: the interval minus up to 10 % (never later than asked, so staleness bounds hold). */
export function jitteredInterval(intervalMs: number, random: number): number {
  return intervalMs * (1 - INTERVAL_JITTER * random);
}

/** Exponential backoff with "equal jitter": half the step fixed, half random; attempt counts from 1. */
export function backoffDelay(attempt: number, random: number, maxMs: number = BACKOFF_MAX_MS): number {
  const step = Math.min(maxMs, BACKOFF_BASE_MS * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return step / 2 + (step / 2) * random;
}

export interface LeasePlan {
  /** `renew` the lease in place, or `refetch` a new credential (not renewable, or too close to its end). */
  readonly action: 'renew' | 'refetch';
  /** Epoch ms when to act. */
  readonly at: number;
}

/**
 * Vault's lifetime watcher rule (api/lifetime_watcher.go): grace = 10 % of the lease as first issued + a random
 * 0-10 %; sleep 2/3 of the remaining lease + grace/3. A lease that cannot be renewed, or whose next sleep would
 * land inside the grace period (renewals stop extending it near max TTL, so `durationMs` shrinks), is replaced
 * by a fresh credential instead, before it expires.
 */
export function planLease(lease: Lease, issuedDurationMs: number, now: number, random: number): LeasePlan {
  const expiresAt = lease.renewedAt + lease.durationMs;
  const remaining = Math.max(expiresAt - now, 0);
  const grace = Math.max(issuedDurationMs, lease.durationMs) * (0.1 + 0.1 * random);
  const at = now + (remaining * 2) / 3 + grace / 3;
  if (!lease.renewable || at >= expiresAt - grace) {
    return { action: 'refetch', at: Math.min(at, Math.max(expiresAt - grace, now)) };
  }
  return { action: 'renew', at };
}

/** A value that expires is fetched anew no sooner than this, so a certificate issued nearly expired cannot spin. */
export const MIN_REFETCH_MS = 5_000;

/**
 * When to fetch anew a value that expires without a lease to renew (a certificate, until its notAfter): the rule
 * for a lease that cannot be renewed, over the time left from now, so at about 70 % of it with jitter, and soon when
 * little is left (a certificate capped by its CA's end, an agent restarted late).
 */
export function planExpiry(expiresAt: number, now: number, random: number): number {
  const left = Math.max(expiresAt - now, 0);
  const lease = { id: 'expiry', durationMs: left, renewable: false, renewedAt: now, issuedAt: now };
  return Math.max(planLease(lease, left, now, random).at, now + MIN_REFETCH_MS);
}
