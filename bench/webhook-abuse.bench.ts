// `npm run bench:webhook-abuse`: the production webhook bundle under the abuses of issue 10, each against a
// fresh process: 16 and 48 concurrent ~6.9 MiB reviews, 40 uploads of 7 MiB that never finish, 40 uploads
// under the body cap that never finish, and 1,000 TLS connections held open, each from a process of its own.
// During each, a normal admission (the ~10 KB review of bench:webhook) is sent every 100 ms over keep-alive
// connections opened before the abuse, as the API server holds them, and another on a new connection of its
// own (the API server's first admission after its connections closed). Prints the peak RSS against 60 % of
// the chart's memory limit (256Mi), the webhook's CPU time and the slowest normal admission of each kind
// against 1 s, after a same-run baseline: the same process idle, answering the same normal admissions with
// no abuse. Then the costliest reviews the API server can send, each as the first admission of a fresh webhook
// (over a connection already open): the webhook's CPU time for it, all threads, against 50 ms. Not a test.
// BENCH_WEBHOOK_BUNDLE=<dir>/webhook.mjs runs another build (e.g. an older commit's) instead of building;
// `-- --only <text>` runs the abuses (after the baseline) and reviews whose names contain <text> (`--only TLS`).
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { connect as connectTcp } from 'node:net';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { cpuMs, rssMiB } from './proc.ts';
import { realisticReview } from './review.ts';
import { MAX_JSON_VALUES } from '../webhook/review.ts';

const MIB = 1024 * 1024;
const LIMIT_MIB = 256;
const TARGET_RSS_MIB = 0.6 * LIMIT_MIB;
const TARGET_LATENCY_MS = 1000;
const ABUSE_MS = 6000;
const PROBE_EVERY_MS = 100;

interface Server {
  readonly child: ChildProcessByStdio<null, Readable, null>;
  readonly port: number;
}

interface Target {
  readonly port: number;
  readonly ca: string;
}

/** An abuse: starts, and returns a function that stops it. Runs in a process of its own (`--abuse NAME PORT CA`). */
type Abuse = (target: Target) => () => void;

function start(bundle: string, certFile: string, keyFile: string): Promise<Server> {
  const args = [
    bundle,
    '--port',
    '0',
    '--metrics-port',
    '0',
    '--tls-cert',
    certFile,
    '--tls-key',
    keyFile,
    '--sidecar-mode',
    'native',
    '--aws-region',
    'eu-west-1',
    '--vault-addr',
    'https://vault.vault.svc:8200',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const port = /"event":"listening","port":(\d+)/.exec(out)?.[1];
      if (port === undefined) return;
      child.stdout.off('data', onData);
      child.stdout.resume();
      resolve({ child, port: Number(port) });
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      reject(new Error(`the webhook exited with ${String(code)}`));
    });
  });
}

/**
 * One POST /mutate on a connection of its own; resolves with the status (0: the connection failed) and the time taken.
 */
function post(
  target: Target,
  body: Buffer | string,
  options: { declared?: number; send?: number; agent?: Agent } = {},
): { done: Promise<{ status: number; ms: number }>; stop: () => void } {
  const started = performance.now();
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  let stop = (): void => undefined;
  const done = new Promise<{ status: number; ms: number }>((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port,
        path: '/mutate',
        method: 'POST',
        ca: target.ca,
        agent: options.agent ?? false,
        headers: { 'content-type': 'application/json', 'content-length': options.declared ?? bytes.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, ms: performance.now() - started });
        });
      },
    );
    req.on('error', () => {
      resolve({ status: 0, ms: performance.now() - started });
    });
    stop = () => req.destroy();
    if (options.send === undefined) req.end(bytes);
    else req.write(bytes.subarray(0, options.send));
  });
  return { done, stop };
}

/** A review of about `mib` MiB: the realistic pod with a long annotation. */
function largeReview(mib: number): Buffer {
  const review = JSON.parse(realisticReview('large')) as {
    request: { object: { metadata: { annotations: Record<string, string> } } };
  };
  review.request.object.metadata.annotations['example.com/padding'] = 'x'.repeat(Math.round(mib * MIB));
  return Buffer.from(JSON.stringify(review));
}

const concurrentReviews =
  (count: number, body: Buffer): Abuse =>
  (target) => {
    let stopped = false;
    const loop = async (): Promise<void> => {
      while (!stopped) await post(target, body).done;
    };
    for (let i = 0; i < count; i += 1) void loop();
    return () => {
      stopped = true;
    };
  };

const stalledUploads =
  (count: number, declared: number, send: number): Abuse =>
  (target) => {
    const body = Buffer.alloc(send, 0x20);
    const uploads = Array.from({ length: count }, () => post(target, body, { declared, send }));
    return () => {
      for (const u of uploads) u.stop();
    };
  };

// The flood comes from another address than the normal admissions, as a hostile pod's does from the API server's.
const FLOOD_ADDRESS = '127.0.0.2';

const heldConnections =
  (count: number): Abuse =>
  (target) => {
    const sockets: TLSSocket[] = [];
    for (let i = 0; i < count; i += 1) {
      const tcp = connectTcp({ host: '127.0.0.1', port: target.port, localAddress: FLOOD_ADDRESS });
      tcp.on('error', () => undefined);
      const socket = connect({ host: '127.0.0.1', socket: tcp, ca: target.ca });
      socket.on('error', () => undefined);
      sockets.push(socket);
    }
    return () => {
      for (const s of sockets) s.destroy();
    };
  };

const review69 = (): Buffer => largeReview(6.9);
const ABUSES: Readonly<Record<string, () => Abuse>> = {
  '16 concurrent 6.9 MiB reviews': () => concurrentReviews(16, review69()),
  '48 concurrent 6.9 MiB reviews': () => concurrentReviews(48, review69()),
  '40 uploads of 7 MiB that never finish': () => stalledUploads(40, 7 * MIB, 6 * MIB),
  '40 uploads of 3 MiB that never finish': () => stalledUploads(40, 3 * MIB, 3 * MIB - 4096),
  '1,000 TLS connections held open': () => heldConnections(1000),
};

/** The realistic review with `count` more annotations named by `key`, with value `value`. */
function annotated(count: number, key: (i: number) => string, value = ''): string {
  const review = JSON.parse(realisticReview('cold')) as {
    request: { object: { metadata: { annotations: Record<string, string> } } };
  };
  const { annotations } = review.request.object.metadata;
  for (let i = 0; i < count; i += 1) annotations[key(i)] = value;
  return JSON.stringify(review);
}

const TARGET_REVIEW_CPU_MS = 50;
const COSTLY_REVIEWS: Readonly<Record<string, () => string>> = {
  'the normal 10 KB review': () => realisticReview('cold'),
  '39,000 unknown 40-character sidekey.io keys': () =>
    annotated(39_000, (i) => `sidekey.io/${i.toString(36).padStart(40, '-')}`, 'x'),
  '280,000 empty annotations': () => annotated(280_000, (i) => `a${i.toString(36)}`),
  'empty annotations just under the value bound': () =>
    annotated(MAX_JSON_VALUES / 2 - 500, (i) => `a${i.toString(36)}`),
};

/** The webhook's CPU time for one review, the first admission it answers, over a connection opened before. */
async function coldReviewCpu(
  bundle: string,
  tls: { certFile: string; keyFile: string; ca: string },
  body: string,
): Promise<{ ms: number; status: number }> {
  const server = await start(bundle, tls.certFile, tls.keyFile);
  const pid = server.child.pid ?? 0;
  const target = { port: server.port, ca: tls.ca };
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: tls.ca });
  try {
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port: target.port, path: '/healthz', ca: tls.ca, agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    await new Promise((r) => setTimeout(r, 300));
    const before = cpuMs(pid);
    const { status } = await post(target, body, { agent }).done;
    // What the answer leaves behind (a garbage collection) is part of its cost.
    await new Promise((r) => setTimeout(r, 200));
    return { ms: cpuMs(pid) - before, status };
  } finally {
    agent.destroy();
    server.child.kill('SIGKILL');
  }
}

/** Starts an abuse in a child process, so the load it puts on its own CPU does not delay the normal admissions. */
function abuseProcess(name: string, target: Target): Promise<() => void> {
  const child = spawn(process.execPath, [SELF, '--abuse', name, String(target.port), target.ca], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve) => {
    child.stdout.once('data', () => {
      resolve(() => child.kill('SIGKILL'));
    });
  });
}

interface Probes {
  readonly sent: number;
  readonly answered: number;
  readonly medianMs: number;
  /** Infinity when one went unanswered. */
  readonly worstMs: number;
  /** Answered after more than TARGET_LATENCY_MS. */
  readonly slow: number;
}

interface Figures {
  readonly peakRss: number;
  /** CPU time of the webhook over the measured window, all threads. */
  readonly cpuMs: number;
  /** Over the keep-alive connections opened before the abuse, as the API server holds them. */
  readonly keepAlive: Probes;
  /**
   * Each on a connection of its own opened amid the abuse, as the API server's first admission after its connections
   * closed.
   */
  readonly fresh: Probes;
}

function summarize(results: readonly { status: number; ms: number }[]): Probes {
  const times = results
    .filter((r) => r.status === 200)
    .map((r) => r.ms)
    .sort((a, b) => a - b);
  return {
    sent: results.length,
    answered: times.length,
    medianMs: times[Math.floor(times.length / 2)] ?? Number.NaN,
    worstMs: times.length < results.length ? Number.POSITIVE_INFINITY : Math.max(0, ...times),
    slow: times.filter((t) => t >= TARGET_LATENCY_MS).length,
  };
}

const within = (p: Probes): boolean => p.answered === p.sent && p.worstMs < TARGET_LATENCY_MS;

function describe(p: Probes): string {
  const worst = Number.isFinite(p.worstMs) ? `${p.worstMs.toFixed(0)} ms` : 'unanswered';
  return `${p.answered}/${p.sent} answered, median ${p.medianMs.toFixed(0)} ms, slowest ${worst} (${p.slow} over ${TARGET_LATENCY_MS} ms)`;
}

/**
 * Runs `abuse` (or nothing) for ABUSE_MS while normal admissions go out every PROBE_EVERY_MS: one over
 * `agent`'s keep-alive connections, one on a new connection.
 */
async function measure(server: Server, target: Target, agent: Agent, abuse: string | undefined): Promise<Figures> {
  const pid = server.child.pid ?? 0;
  let peakRss = rssMiB(pid);
  const cpuBefore = cpuMs(pid);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(pid));
  }, 50);
  const stop = abuse === undefined ? undefined : await abuseProcess(abuse, target);
  await new Promise((r) => setTimeout(r, 500));
  const keepAlive: Promise<{ status: number; ms: number }>[] = [];
  const fresh: Promise<{ status: number; ms: number }>[] = [];
  const end = performance.now() + ABUSE_MS;
  let seq = 0;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    seq += 1;
    keepAlive.push(post(target, realisticReview(`probe-${seq}`), { agent }).done);
    fresh.push(post(target, realisticReview(`fresh-${seq}`)).done);
  }
  const figures = { keepAlive: summarize(await Promise.all(keepAlive)), fresh: summarize(await Promise.all(fresh)) };
  const cpu = cpuMs(pid) - cpuBefore;
  stop?.();
  clearInterval(sampler);
  return { peakRss, cpuMs: cpu, ...figures };
}

async function main(): Promise<void> {
  const { createTestCa, leafFiles } = await import('../test/support/test-ca.ts');
  const ca = createTestCa();
  const { dir, tlsCert, tlsKey } = leafFiles(ca, 'abuse');
  let bundle = process.env['BENCH_WEBHOOK_BUNDLE'];
  if (bundle === undefined) {
    const { buildAll } = await import('../scripts/build.ts');
    bundle = (await buildAll(join(dir, 'dist'))).find((b) => b.name === 'webhook')?.file;
  }
  if (bundle === undefined) throw new Error('the build made no webhook bundle');
  const only = process.argv.indexOf('--only') > 0 ? (process.argv[process.argv.indexOf('--only') + 1] ?? '') : '';
  const abuses = Object.keys(ABUSES).filter((n) => n.includes(only));
  const reviews = Object.entries(COSTLY_REVIEWS).filter(([n]) => n.includes(only));
  if (abuses.length + reviews.length === 0)
    throw new Error(
      `--only ${only}: no abuse or review has that in its name (${[...Object.keys(ABUSES), ...Object.keys(COSTLY_REVIEWS)].join('; ')})`,
    );
  const scenarios: [string, string | undefined][] =
    abuses.length === 0
      ? []
      : [['baseline: idle, normal admissions only', undefined], ...abuses.map((n) => [n, n] as [string, string])];
  process.stdout.write(
    `webhook abuse benchmark: ${bundle}, Node ${process.version}; ${ABUSE_MS / 1000} s per abuse, a normal admission every ${PROBE_EVERY_MS} ms\n`,
  );
  process.stdout.write(
    `targets: peak RSS < ${TARGET_RSS_MIB.toFixed(1)} MiB (60 % of ${LIMIT_MIB}Mi), slowest normal admission < ${TARGET_LATENCY_MS} ms, all answered\n\n`,
  );
  let allMet = true;
  try {
    for (const [name, abuse] of scenarios) {
      const server = await start(bundle, tlsCert, tlsKey);
      const target = { port: server.port, ca: ca.caCert };
      // One keep-alive pool for the baseline window and the abuse: its connections exist before the abuse.
      const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: target.ca });
      await measure(server, target, agent, undefined);
      const idle = rssMiB(server.child.pid ?? 0);
      const f = await measure(server, target, agent, abuse);
      agent.destroy();
      server.child.kill('SIGKILL');
      const met = f.peakRss < TARGET_RSS_MIB && within(f.keepAlive) && within(f.fresh);
      allMet &&= met;
      process.stdout.write(
        `${name}: RSS idle ${idle.toFixed(0)} MiB, peak ${f.peakRss.toFixed(0)} MiB, webhook CPU ${(f.cpuMs / 1000).toFixed(2)} s  ${met ? 'meets' : 'MISSES'}\n`,
      );
      process.stdout.write(`  normal admissions over keep-alive connections: ${describe(f.keepAlive)}\n`);
      process.stdout.write(`  normal admissions on new connections:         ${describe(f.fresh)}\n`);
    }
    if (reviews.length > 0)
      process.stdout.write(
        `\nthe costliest reviews, each the first admission of a fresh webhook (target: at most ${TARGET_REVIEW_CPU_MS} ms of CPU):\n`,
      );
    for (const [name, build] of reviews) {
      const body = build();
      const { ms, status } = await coldReviewCpu(bundle, { certFile: tlsCert, keyFile: tlsKey, ca: ca.caCert }, body);
      const met = ms <= TARGET_REVIEW_CPU_MS && status === 200;
      allMet &&= met;
      process.stdout.write(
        `  ${name} (${(body.length / 1024 / 1024).toFixed(2)} MiB): ${ms.toFixed(1)} ms of CPU, HTTP ${status}  ${met ? 'meets' : 'MISSES'}\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    ca.dispose();
  }
  process.stdout.write(`\nverdict: ${allMet ? 'every abuse within the targets' : 'some abuse MISSES the targets'}\n`);
}

const SELF = new URL(import.meta.url).pathname;
if (process.argv[2] === '--abuse') {
  const abuse = ABUSES[process.argv[3] ?? '']?.();
  if (abuse === undefined) throw new Error(`unknown abuse ${String(process.argv[3])}`);
  abuse({ port: Number(process.argv[4]), ca: process.argv[5] ?? '' });
  process.stdout.write('started\n');
} else {
  await main();
}
