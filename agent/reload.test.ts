import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createMetrics, type AgentMetrics } from './metrics.ts';
import { findMainProcess, parseStat } from './process-finder.ts';
import { createReloader, type ReloadDeps } from './reload.ts';
import { startReloadApp } from './testdata/start-reload-app.ts';

const timers = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => { clearTimeout(h as NodeJS.Timeout); } };

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
    return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/-/reload`, posts: () => posts, close: () => srv.close() };
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
