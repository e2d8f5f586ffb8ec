import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createMetrics, type AgentMetrics } from './metrics.ts';
import { findMainProcess, parseStat } from './process-finder.ts';
import { createReloader, loopbackTarget, type ReloadDeps } from './reload.ts';
import { startReloadApp } from './testdata/start-reload-app.ts';

const timers = {
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
  clearTimeout: (h: unknown) => {
    clearTimeout(h as NodeJS.Timeout);
  },
};

function deps(metrics: AgentMetrics, over: Partial<ReloadDeps> = {}): ReloadDeps {
  return { log: pino({ level: 'silent' }), metrics, timers, debounceMs: 20, sleep: () => Promise.resolve(), ...over };
}

async function count(metrics: AgentMetrics, kind: string, result: string): Promise<number> {
  const values = (await metrics.reloads.get()).values;
  return values.find((v) => v.labels.kind === kind && v.labels.result === result)?.value ?? 0;
}

void describe('process finder', () => {
  void it('parses stat with odd process names', () => {
    const fields = Array.from({ length: 30 }, (_, i) => String(i + 3));
    fields[1] = '77';
    fields[19] = '123456';
    assert.deepEqual(parseStat(`42 (a) (b c) ${fields.join(' ')}`), { ppid: 77, startTime: 123_456n });
  });

  void it('picks the topmost marked process, not its children', async (t) => {
    const app = await startReloadApp(`finder-${process.pid}`);
    t.after(() => app.child.kill('SIGTERM'));
    assert.equal((await findMainProcess(`finder-${process.pid}`))?.pid, app.child.pid);
    assert.equal(await findMainProcess('no-such-container'), undefined);
  });
});

void describe('reload by signal', () => {
  void it('signals the main process once per debounced burst', async (t) => {
    const container = `app-${process.pid}`;
    const app = await startReloadApp(container);
    t.after(() => app.child.kill('SIGTERM'));
    const metrics = createMetrics();
    const reloader = createReloader({ kind: 'signal', signal: 'SIGHUP', container }, deps(metrics));
    reloader.request();
    reloader.request();
    reloader.request();
    await reloader.idle();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(app.output().match(/main:SIGHUP/g)?.length, 1);
    assert.ok(!app.output().includes('worker:SIGHUP'));
    assert.equal(await count(metrics, 'signal', 'ok'), 1);
  });

  void it('reports a missing process as a failed reload, not an error', async () => {
    const metrics = createMetrics();
    const reloader = createReloader({ kind: 'signal', signal: 'SIGHUP', container: 'nobody-here' }, deps(metrics));
    reloader.request();
    await reloader.idle();
    assert.equal(await count(metrics, 'signal', 'failed'), 1);
  });
});

void describe('reload by http', () => {
  async function server(statuses: number[]): Promise<{ url: string; posts: () => number; close: () => void }> {
    let posts = 0;
    const srv = createServer((req, res) => {
      if (req.method === 'POST') posts += 1;
      res.statusCode = statuses[Math.min(posts - 1, statuses.length - 1)] ?? 200;
      res.end();
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return {
      url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/-/reload`,
      posts: () => posts,
      close: () => srv.close(),
    };
  }

  void it('POSTs once per burst and retries a failed attempt', async (t) => {
    const app = await server([503, 200]);
    t.after(app.close);
    const metrics = createMetrics();
    const reloader = createReloader({ kind: 'http', url: app.url }, deps(metrics));
    reloader.request();
    reloader.request();
    await reloader.idle();
    assert.equal(app.posts(), 2);
    assert.equal(await count(metrics, 'http', 'ok'), 1);
  });

  void it('gives up after three attempts and reports it', async (t) => {
    const app = await server([500]);
    t.after(app.close);
    const metrics = createMetrics();
    const reloader = createReloader({ kind: 'http', url: app.url }, deps(metrics));
    reloader.request();
    await reloader.idle();
    assert.equal(app.posts(), 3);
    assert.equal(await count(metrics, 'http', 'failed'), 1);
  });
});

void describe('reload by http, hardened', () => {
  void it('does not follow a redirect: a 307 fails the reload and the POST never reaches the other host', async (t) => {
    let elsewhere = 0;
    const other = createServer((_req, res) => {
      elsewhere += 1;
      res.end();
    });
    other.listen(0, '127.0.0.1');
    await once(other, 'listening');
    const redirecting = createServer((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/collect` }).end();
    });
    redirecting.listen(0, '127.0.0.1');
    await once(redirecting, 'listening');
    t.after(() => {
      other.close();
      redirecting.close();
    });
    const metrics = createMetrics();
    const reloader = createReloader(
      { kind: 'http', url: `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/-/reload` },
      deps(metrics),
    );
    reloader.request();
    await reloader.idle();
    assert.equal(elsewhere, 0);
    assert.equal(await count(metrics, 'http', 'failed'), 1);
  });

  void it('refuses a URL off the loopback interface, or https, without connecting', async () => {
    assert.throws(() => loopbackTarget('http://10.0.0.1/reload'), /must be http on 127\.0\.0\.1, localhost or \[::1\]/);
    assert.throws(() => loopbackTarget('https://127.0.0.1:8443/reload'), /must be http on 127\.0\.0\.1/);
    assert.deepEqual(loopbackTarget('http://localhost:8080/r?x=1').path, '/r?x=1');
    const metrics = createMetrics();
    const reloader = createReloader({ kind: 'http', url: 'http://example.com/reload' }, deps(metrics));
    reloader.request();
    await reloader.idle();
    assert.equal(await count(metrics, 'http', 'failed'), 1);
  });
});

void describe('reload debounce (fake clock)', () => {
  /** Timers on a fake clock: advance() runs what falls due, in order. */
  function fakeClock(): { timers: ReloadDeps['timers']; now: () => number; advance: (ms: number) => Promise<void> } {
    let clock = 0;
    let nextId = 0;
    const pending = new Map<number, { at: number; fn: () => void }>();
    return {
      now: () => clock,
      timers: {
        setTimeout: (fn, ms) => {
          pending.set(++nextId, { at: clock + ms, fn });
          return nextId;
        },
        clearTimeout: (id) => {
          pending.delete(id as number);
        },
      },
      advance: async (ms) => {
        const end = clock + ms;
        for (;;) {
          const [id, due] = [...pending].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
          if (id === undefined || due === undefined || due.at > end) break;
          pending.delete(id);
          clock = due.at;
          due.fn();
          await new Promise((resolve) => setImmediate(resolve));
        }
        clock = end;
      },
    };
  }

  void it('reloads at least every 3 s while changes keep coming every 400 ms, and once after they stop', async () => {
    const clock = fakeClock();
    const posts: number[] = [];
    const metrics = createMetrics();
    const reloader = createReloader(
      { kind: 'http', url: 'http://127.0.0.1:1/-/reload' },
      {
        ...deps(metrics, { timers: clock.timers, now: clock.now, debounceMs: 500 }),
        post: () => {
          posts.push(clock.now());
          return Promise.resolve(200);
        },
      },
    );
    for (let t = 0; t < 10_000; t += 400) {
      reloader.request();
      await clock.advance(400);
    }
    await clock.advance(1000);
    assert.deepEqual(posts, [3000, 6200, 9400, 10_100]);
  });

  void it('a single burst still gives one reload after the quiet debounce', async () => {
    const clock = fakeClock();
    const posts: number[] = [];
    const reloader = createReloader(
      { kind: 'http', url: 'http://127.0.0.1:1/-/reload' },
      {
        ...deps(createMetrics(), { timers: clock.timers, now: clock.now, debounceMs: 500 }),
        post: () => {
          posts.push(clock.now());
          return Promise.resolve(200);
        },
      },
    );
    reloader.request();
    await clock.advance(100);
    reloader.request();
    await clock.advance(2000);
    assert.deepEqual(posts, [600]);
  });
});
