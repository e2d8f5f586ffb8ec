import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffDelay,
  clampDelay,
  effectiveInterval,
  jitteredInterval,
  MAX_TIMER_MS,
  monotonicClock,
  planExpiry,
  planLease,
  MIN_REFETCH_MS,
} from './timing.ts';
import { REFRESH_FLOOR_MS } from '../injector/constants.ts';

void describe('timing', () => {
  void it('the agent clock starts at the wall time and then follows only the monotonic clock', () => {
    let wall = 1_700_000_000_000;
    let mono = 500;
    const now = monotonicClock(
      () => wall,
      () => mono,
    );
    assert.equal(now(), 1_700_000_000_000);
    wall -= 3_600_000;
    mono += 10_000;
    assert.equal(now(), 1_700_000_010_000, 'a wall-clock step back is not seen');
  });

  void it('clamps timers to 2^31-1 ms and never negative', () => {
    assert.equal(clampDelay(768 * 3_600_000), MAX_TIMER_MS);
    assert.equal(clampDelay(-5), 0);
    assert.equal(clampDelay(Number.NaN), 0);
    assert.equal(clampDelay(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
    assert.equal(clampDelay(1.2), 2);
  });

  void it('floors and jitters intervals downwards only', () => {
    assert.equal(effectiveInterval(1000), REFRESH_FLOOR_MS);
    assert.equal(effectiveInterval(undefined), 3_600_000);
    assert.equal(jitteredInterval(100_000, 0), 100_000);
    assert.equal(jitteredInterval(100_000, 0.999), 90_010);
  });

  void it('backs off exponentially with equal jitter up to the cap', () => {
    const table: [number, number, number][] = [
      [1, 0, 500],
      [1, 1, 1000],
      [2, 0, 1000],
      [5, 0.5, 12_000],
      [40, 0, 150_000],
      [40, 1, 300_000],
    ];
    for (const [attempt, random, want] of table)
      assert.equal(backoffDelay(attempt, random), want, `attempt ${attempt} random ${random}`);
  });

  void it('plans lease renewal and replacement like Vault lifetime watcher', () => {
    const lease = { id: 'l', durationMs: 60_000, renewable: true, renewedAt: 0, issuedAt: 0 };
    assert.deepEqual(planLease(lease, 60_000, 0, 0), { action: 'renew', at: 42_000 });
    assert.deepEqual(planLease({ ...lease, renewable: false }, 60_000, 0, 0), { action: 'refetch', at: 42_000 });
    // Near max TTL the renewal came back with 5 s left: replace it before the grace period.
    const short = { ...lease, durationMs: 5000, renewedAt: 100_000 };
    assert.deepEqual(planLease(short, 60_000, 100_000, 0), { action: 'refetch', at: 100_000 });
    assert.ok(
      planLease({ ...lease, durationMs: 2000 * 3_600_000 }, 2000 * 3_600_000, 0, 0.5).at > MAX_TIMER_MS,
      'callers clamp',
    );
  });

  void it('plans a certificate at about 2/3 of its time left with jitter, soon when little is left', () => {
    const day = 86_400_000;
    // A fresh 24h certificate: between 70 % and 73.3 % of it, by the jitter.
    assert.equal(Math.round(planExpiry(day, 0, 0)), 60_480_000);
    assert.equal(Math.round(planExpiry(day, 0, 1)), Math.round((2 / 3 + 0.2 / 3) * day));
    // Found with 1h left (an agent restarted late, a certificate cut short by its CA): 70 % of that hour from now.
    assert.equal(
      Math.round(planExpiry(10 * day, 10 * day - 3_600_000, 0)),
      Math.round(10 * day - 3_600_000 + 0.7 * 3_600_000),
    );
    // Expired, or nearly: not in a tight loop.
    assert.equal(planExpiry(1000, 5000, 0.5), 5000 + MIN_REFETCH_MS);
  });
});
