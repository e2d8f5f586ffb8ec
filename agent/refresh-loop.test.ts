import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { AgentConfig, FileSpec } from '../injector/agent-config.ts';
import type { Provider, SecretReference } from '../injector/reference.ts';
import { createMetrics } from './metrics.ts';
import { ProviderError } from './provider.ts';
import type { FetchOutcome, Lease, SecretProvider } from './provider.ts';
import { BACKEND_CALL_TIMEOUT_MS, RefreshLoop, type LoopDeps } from './refresh-loop.ts';
import { defined } from '../injector/defined.ts';

type Answer = (ref: SecretReference) => FetchOutcome;

interface Fake {
  provider: SecretProvider;
  calls: SecretReference[][];
  renewals: Lease[];
  answer: Answer;
  renew: (lease: Lease) => Lease;
}

function fakeProvider(name: Provider, answer: Answer): Fake {
  const fake: Fake = {
    calls: [],
    renewals: [],
    answer,
    renew: (lease) => ({ ...lease, renewedAt: Date.now() }),
    provider: {
      name,
      fetchMany(refs) {
        fake.calls.push([...refs]);
        return Promise.resolve(refs.map((ref) => fake.answer(ref)));
      },
      renewLease(lease) {
        fake.renewals.push(lease);
        return Promise.resolve().then(() => fake.renew(lease));
      },
      close: () => Promise.resolve(),
    },
  };
  return fake;
}

const ok = (ref: SecretReference, value: Record<string, unknown>, version = 'v1', lease?: Lease): FetchOutcome => ({
  ok: true,
  ref,
  fetched: { value: { kind: 'object', value }, version, ...defined({ lease }) },
});

function config(files: FileSpec[], over: Partial<AgentConfig> = {}): AgentConfig {
  return {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir: '/unused',
    port: 1,
    fileMode: 0o400,
    files,
    reload: { kind: 'none' },
    ...over,
  };
}

function file(name: string, path: string, field?: string, refreshMs?: number): FileSpec {
  return { name, ref: { provider: 'file', path, ...defined({ field }) }, ...defined({ refreshMs }) };
}

interface Harness {
  loop: RefreshLoop;
  writes: Map<string, string>[];
  reloads: number;
  failWrites: boolean;
  /** The volume already holds a set when the loop starts (a restarted sidecar). */
  earlierSet: boolean;
  /** The loop's log lines (JSON). */
  logs: string[];
  advance(ms: number): Promise<void>;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

function harness(t: TestContext, cfg: AgentConfig, fake: Fake, random = 0.5): Harness {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const h: Harness = {
    writes: [],
    reloads: 0,
    failWrites: false,
    earlierSet: false,
    logs: [],
    loop: undefined as unknown as RefreshLoop,
    async advance(ms) {
      let left = ms;
      do {
        const step = Math.min(1000, left);
        t.mock.timers.tick(step);
        await flush();
        left -= step;
      } while (left > 0);
    },
  };
  const deps: LoopDeps = {
    config: cfg,
    providers: new Map([[fake.provider.name, fake.provider]]),
    write: (payload) => {
      if (h.failWrites) return Promise.reject(Object.assign(new Error('full'), { errno: 'ENOSPC' }));
      const outcome = h.writes.length > 0 || h.earlierSet ? 'replaced' : 'first';
      h.writes.push(new Map([...payload].map(([k, v]) => [k, Buffer.from(v).toString()])));
      return Promise.resolve(outcome);
    },
    reload: () => (h.reloads += 1),
    log: pino({ level: 'info' }, { write: (line: string) => h.logs.push(line) }),
    metrics: createMetrics(),
    now: () => Date.now(),
    random: () => random,
    timers: {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (handle) => {
        clearTimeout(handle as NodeJS.Timeout);
      },
    },
  };
  h.loop = new RefreshLoop(deps);
  t.after(() => h.loop.stop());
  return h;
}

void describe('RefreshLoop', () => {
  void it('fetches every source in one batch, shares one fetch between fields, writes once, no reload at first', async (t) => {
    const files = [
      file('user', 'db', 'username'),
      file('pass', 'db', 'password'),
      ...Array.from({ length: 25 }, (_, i) => file(`f${i}`, `s${i}`, 'k')),
    ];
    const fake = fakeProvider('file', (ref) => ok(ref, { username: 'app', password: 'pw', k: ref.path }));
    const h = harness(t, config(files), fake);
    h.loop.start();
    await h.advance(0);
    assert.equal(fake.calls.length, 1);
    assert.equal(fake.calls[0]!.length, 26);
    assert.ok(fake.calls[0]!.every((r) => r.field === undefined));
    assert.equal(h.writes.length, 1);
    assert.equal(h.writes[0]!.get('user'), 'app');
    assert.equal(h.writes[0]!.get('pass'), 'pw');
    assert.equal(h.loop.complete, true);
    assert.equal(h.reloads, 0);
  });

  void it('a restarted sidecar that replaces the set an earlier process left reloads the running app', async (t) => {
    const fake = fakeProvider('file', (ref) => ok(ref, { password: 'rotated-while-down' }));
    const h = harness(t, config([file('a', 'db', 'password')]), fake);
    h.earlierSet = true;
    h.loop.start();
    await h.advance(0);
    assert.equal(h.writes.length, 1);
    assert.equal(h.reloads, 1);
    assert.ok(h.logs.some((l) => l.includes('secrets updated')));
  });

  void it('refreshes at the floored, jittered interval; writes and reloads only on change', async (t) => {
    let password = 'one';
    const fake = fakeProvider('file', (ref) => ok(ref, { password }, password));
    const h = harness(t, config([file('a', 'db', 'password', 1000)]), fake, 0);
    h.loop.start();
    await h.advance(0);
    await h.advance(9000);
    assert.equal(fake.calls.length, 1, 'a 1 s interval is raised to the 10 s floor');
    await h.advance(1000);
    assert.equal(fake.calls.length, 2);
    assert.equal(h.writes.length, 1, 'unchanged content is not written');
    password = 'two';
    await h.advance(10_000);
    assert.equal(h.writes.length, 2);
    assert.equal(h.writes[1]?.get('a'), 'two');
    assert.equal(h.reloads, 1);
  });

  void it('backs off exponentially on errors, keeps the files, and reports staleness', async (t) => {
    let failing = false;
    const fake = fakeProvider('file', (ref) =>
      failing ? { ok: false, ref, error: new ProviderError('UNAVAILABLE', 'down') } : ok(ref, { k: 'v' }),
    );
    const h = harness(t, config([file('a', 's', 'k', 60_000)], { staleAfterMs: 120_000 }), fake, 0);
    h.loop.start();
    await h.advance(0);
    failing = true;
    await h.advance(60_000);
    const times: number[] = [];
    const base = fake.calls.length;
    for (let i = 0; i < 40; i++) {
      await h.advance(1000);
      if (fake.calls.length > base + times.length) times.push(Date.now());
    }
    const gaps = times.slice(1).map((t2, i) => t2 - (times[i] ?? 0));
    assert.deepEqual(gaps.slice(0, 4), [1000, 2000, 4000, 8000], 'with random 0 the gaps are half of 2, 4, 8, 16 s');
    assert.equal(h.writes.length, 1);
    assert.deepEqual(h.loop.staleFiles(Date.now()), []);
    assert.deepEqual(h.loop.staleFiles(Date.now() + 120_000), ['a']);
    failing = false;
    await h.advance(40_000);
    assert.deepEqual(h.loop.staleFiles(Date.now()), []);
  });

  void it('renews leases at about 2/3 of the TTL and fetches a new credential near max TTL', async (t) => {
    let serial = 0;
    const fake = fakeProvider('file', (ref) => {
      serial += 1;
      return ok(ref, { u: `user${serial}` }, `lease${serial}`, {
        id: `l${serial}`,
        durationMs: 60_000,
        renewable: true,
        renewedAt: Date.now(),
        issuedAt: Date.now(),
      });
    });
    const maxTtlAt = 1_000_000 + 150_000;
    fake.renew = (lease) => ({ ...lease, renewedAt: Date.now(), durationMs: Math.min(60_000, maxTtlAt - Date.now()) });
    const h = harness(t, config([file('u', 'creds', 'u')]), fake, 0);
    h.loop.start();
    await h.advance(0);
    await h.advance(39_000);
    assert.equal(fake.renewals.length, 0);
    await h.advance(4000);
    assert.equal(fake.renewals.length, 1, 'renewed at 2/3 of 60 s plus a third of the 6 s grace: 42 s');
    await h.advance(120_000);
    assert.ok(fake.calls.length >= 2, 'a new credential before max TTL');
    assert.ok(Date.now() - 1_000_000 > 120_000);
    assert.equal(h.writes.at(-1)?.get('u'), `user${serial}`);
    assert.equal(h.reloads, serial - 1);
  });

  void it('fetches leased sources again when the provider pokes (new login, old leases revoked)', async (t) => {
    let serial = 0;
    const fake = fakeProvider('file', (ref) => {
      serial += 1;
      return ok(ref, { u: `user${serial}` }, `lease${serial}`, {
        id: `l${serial}`,
        durationMs: 600_000,
        renewable: true,
        renewedAt: Date.now(),
        issuedAt: Date.now(),
      });
    });
    const h = harness(t, config([file('u', 'creds', 'u')]), fake, 0);
    h.loop.start();
    await h.advance(0);
    h.loop.poke('file');
    await h.advance(1000);
    assert.equal(fake.calls.length, 2);
    assert.equal(fake.renewals.length, 0);
    assert.equal(h.writes.at(-1)?.get('u'), 'user2');
  });

  void it('replaces a lease whose renewal fails (expired or revoked) with a new credential', async (t) => {
    let serial = 0;
    const fake = fakeProvider('file', (ref) => {
      serial += 1;
      return ok(ref, { u: `user${serial}` }, `lease${serial}`, {
        id: `l${serial}`,
        durationMs: 60_000,
        renewable: true,
        renewedAt: Date.now(),
        issuedAt: Date.now(),
      });
    });
    fake.renew = () => {
      throw new ProviderError('LEASE_EXPIRED', 'lease not found');
    };
    const h = harness(t, config([file('u', 'creds', 'u')]), fake, 0);
    h.loop.start();
    await h.advance(0);
    await h.advance(43_000);
    assert.equal(fake.renewals.length, 1);
    assert.equal(fake.calls.length, 2, 'fetched again right after the failed renewal');
    assert.equal(h.writes.at(-1)?.get('u'), 'user2');
    assert.equal(h.reloads, 1);
    const logged = h.logs
      .map((line) => JSON.parse(line) as { msg: string; code?: string; retryInMs?: number })
      .find((l) => l.code === 'LEASE_EXPIRED');
    assert.equal(logged?.msg, 'lease renewal failed; fetching a new credential');
    assert.equal(logged.retryInMs, 0, 'the log names the retry that happens: at once');
  });

  void it('treats a backend that never answers as unavailable and keeps refreshing', async (t) => {
    let hang = false;
    const fake = fakeProvider('file', (ref) => ok(ref, { k: 'v' }));
    const fetchMany = fake.provider.fetchMany.bind(fake.provider);
    fake.provider = { ...fake.provider, fetchMany: (refs) => (hang ? new Promise(() => undefined) : fetchMany(refs)) };
    const h = harness(t, config([file('f', 's', 'k', 60_000)]), fake, 0);
    h.loop.start();
    await h.advance(0);
    hang = true;
    await h.advance(60_000 + BACKEND_CALL_TIMEOUT_MS);
    assert.equal(h.loop.sources[0]?.lastError?.startsWith('UNAVAILABLE'), true);
    hang = false;
    await h.advance(2000);
    assert.equal(h.loop.sources[0].failures, 0);
  });

  void it('stop() gives up a backend call in flight instead of waiting for it (SIGTERM during a hung call)', async (t) => {
    const fake = fakeProvider('file', (ref) => ok(ref, { k: 'v' }));
    let calls = 0;
    fake.provider = {
      ...fake.provider,
      fetchMany: () => {
        calls += 1;
        return new Promise(() => undefined);
      },
    };
    const h = harness(t, config([file('f', 's', 'k', 60_000)]), fake, 0);
    h.loop.start();
    await h.advance(0);
    assert.equal(calls, 1, 'the call hangs');
    let stopped = false;
    void h.loop.stop().then(() => (stopped = true));
    await flush();
    assert.equal(stopped, true, 'stop() returned without the backend call answering');
    assert.equal(h.writes.length, 0);
  });

  void it('a first write that fails says no files are in place (there are no last good ones), and init names it', async (t) => {
    const fake = fakeProvider('file', (ref) => ok(ref, { k: 'v' }));
    const h = harness(t, config([file('f', 's', 'k', 60_000)]), fake, 0);
    h.failWrites = true;
    h.loop.start();
    await h.advance(0);
    const logged = h.logs
      .map((line) => JSON.parse(line) as { msg: string; errno?: string })
      .filter((l) => l.errno === 'ENOSPC');
    assert.deepEqual(
      logged.map((l) => l.msg),
      ['writing secrets failed; no files are in place yet'],
    );
    assert.match(h.loop.failureSummary(), /write ENOSPC/);
    h.failWrites = false;
    await h.advance(2000);
    assert.equal(h.writes.length, 1);
    assert.equal(h.loop.failureSummary(), '');
  });

  void it('retries a failed write and keeps the reload for when it lands', async (t) => {
    let value = 'a';
    const fake = fakeProvider('file', (ref) => ok(ref, { k: value }, value));
    const h = harness(t, config([file('f', 's', 'k', 60_000)]), fake, 0);
    h.loop.start();
    await h.advance(0);
    value = 'b';
    h.failWrites = true;
    await h.advance(60_000);
    assert.equal(h.writes.length, 1);
    h.failWrites = false;
    await h.advance(2000);
    assert.equal(h.writes.length, 2);
    assert.equal(h.reloads, 1);
  });

  void it('re-issues a certificate at about 2/3 of its lifetime, not at the interval nor on a poke; stale once expired', async (t) => {
    let serial = 1;
    const fake = fakeProvider('file', (ref) => ({
      ok: true,
      ref,
      fetched: {
        value: { kind: 'object', value: { certificate: `c${serial}` } },
        version: `s${serial}`,
        expiresAt: Date.now() + 300_000,
      },
    }));
    const h = harness(t, config([file('tls.crt', 'pki/issue/web', 'certificate', 60_000)]), fake, 0);
    h.loop.start();
    await h.advance(0);
    h.loop.poke('file');
    await h.advance(200_000);
    assert.equal(fake.calls.length, 1, 'neither the 60 s interval nor a poke (a new Vault token) re-issues it');
    serial = 2;
    await h.advance(10_000);
    assert.equal(fake.calls.length, 2, 'at 70 % of 300 s with random 0');
    assert.equal(h.writes.at(-1)?.get('tls.crt'), 'c2');
    assert.equal(h.reloads, 1);
    assert.deepEqual(h.loop.staleFiles(Date.now() + 299_000), []);
    assert.deepEqual(h.loop.staleFiles(Date.now() + 301_000), ['tls.crt'], 'stale once the certificate expired');
  });
});
