// `npm run bench:webhook`: the webhook (the production bundle, dist-style, built into a temp dir) against a baseline
// bare
// node:https server that parses the body and answers a fixed review, both driven with ~10 KB realistic
// AdmissionReviews over keep-alive connections: at a fixed 500 admissions/s (open loop: requests leave on a
// fixed schedule whatever the answers do; the worst lag behind it is printed) and at saturation (closed
// loop), after a closed-loop warm-up on the same connections. Prints admissions/s, p50/p99 from send to answer,
// the server's CPU time per request and RSS, and how much of either CPU other work took during each run.
// Not a test. BENCH_SECONDS (default 10) sets the length of each run; the fixed rate runs three rounds.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { realisticReview } from './review.ts';
import { defined } from '../injector/defined.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const FIXED_RATE = 500;
/** The fixed-rate run is repeated (the machine is shared; the verdict takes the median p99). */
const ROUNDS = 3;
const CONNECTIONS = 8;
const WARM_UP_SECONDS = 3;
const TARGET_P99_MS = 5;
/** The server runs on this CPU and the load generator on the other (taskset), so they do not steal from each other. */
const SERVER_CPU = '1';
const CLIENT_CPU = '0';
/** USER_HZ, the unit of /proc/stat and /proc/PID/stat times. */
const TICKS_PER_SECOND = 100;
/** Distinct reviews made before the runs, so the load generator spends its time sending. */
const BODIES: string[] = [];
const SELF = new URL(import.meta.url).pathname;

/** The baseline server (run as `node bench/webhook.bench.ts --baseline CERT KEY`). */
function runBaseline(certFile: string, keyFile: string): void {
  const fixed = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'fixed', allowed: true },
  });
  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(fixed) });
      res.end(fixed);
    });
  });
  server.keepAliveTimeout = 90_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}

type Child = ChildProcessByStdio<null, Readable, null>;

interface Started {
  readonly child: Child;
  readonly port: number;
  readonly metricsPort?: number;
}

/** Starts a server process and waits for its first JSON line carrying `port`. */
function startServer(args: readonly string[]): Promise<Started> {
  const child = spawn('taskset', ['-c', SERVER_CPU, process.execPath, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buffer = '';
    let found = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (found) return;
      buffer += chunk.toString();
      for (const line of buffer.split('\n')) {
        const fields = line.startsWith('{') ? (JSON.parse(line) as { port?: number; metricsPort?: number }) : {};
        if (typeof fields.port === 'number') {
          found = true;
          resolve({ child, port: fields.port, ...defined({ metricsPort: fields.metricsPort }) });
          return;
        }
      }
    });
    child.once('exit', (code) => {
      reject(new Error(`server exited with ${code ?? 'a signal'}`));
    });
    setTimeout(() => {
      if (found) return;
      child.kill();
      reject(new Error('the server did not report its port within 20 s'));
    }, 20_000).unref();
  });
}

/** Cumulative counts of the webhook's own latency histogram for injected admissions, by bucket bound. */
async function serverBuckets(metricsPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const buckets = new Map<string, number>();
  for (const match of text.matchAll(
    /^sidekey_webhook_admission_duration_seconds_bucket\{le="([^"]+)",result="injected"\} (\d+)$/gm,
  )) {
    buckets.set(match[1] ?? '', Number(match[2]));
  }
  return buckets;
}

/** "99.9% <= 2.5 ms" lines: the share of admissions the webhook itself answered within each bound. */
function serverShare(before: Map<string, number>, after: Map<string, number>): string {
  const total = (after.get('+Inf') ?? 0) - (before.get('+Inf') ?? 0);
  return ['0.001', '0.0025', '0.005']
    .map(
      (le) =>
        `${((((after.get(le) ?? 0) - (before.get(le) ?? 0)) / Math.max(total, 1)) * 100).toFixed(2)}% <= ${Number(le) * 1000} ms`,
    )
    .join(', ');
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

/** Clock ticks a CPU spent busy (steal included: time the host gave to other machines), from /proc/stat. */
function cpuBusyTicks(cpu: string): number {
  const line =
    readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${cpu} `)) ?? '';
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.split(/\s+/).slice(1).map(Number);
  return user + nice + system + irq + softirq + steal;
}

/** Clock ticks a process has run, all threads (utime + stime), from /proc/PID/stat. */
function processTicks(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Busy ticks of the server's and the load generator's CPUs that were neither process's. */
function foreignTicks(serverPid: number): { server: number; client: number } {
  return {
    server: cpuBusyTicks(SERVER_CPU) - processTicks(serverPid),
    client: cpuBusyTicks(CLIENT_CPU) - processTicks(process.pid),
  };
}

interface RunResult {
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly peakRss: number;
  /** The worst delay of a send behind its schedule (fixed rate only). */
  readonly lag: number;
  /** The server's CPU time per answered request, ms (less noisy than latency on a shared machine). */
  readonly cpuMs: number;
  /** Share of the server's and the load generator's CPUs that other work (or the host) took during the run. */
  readonly others: { readonly server: number; readonly client: number };
}

const pct = (share: number): string => `${(share * 100).toFixed(0)}%`;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

/**
 * Drives one server: `fixedRate` admissions/s open loop, or saturation (closed loop, one in flight per connection).
 * The agent's connections are the warm-up's, so no TLS handshake falls inside a measured run.
 */
async function drive(
  port: number,
  agent: Agent,
  pid: number,
  fixedRate: number | undefined,
  seconds = SECONDS,
): Promise<RunResult> {
  const latencies: number[] = [];
  let errors = 0;
  let seq = 0;
  let peakRss = rssMiB(pid);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(pid));
  }, 200);
  let lag = 0;
  const send = (scheduled: number): Promise<void> =>
    new Promise((resolve) => {
      const sent = performance.now();
      lag = Math.max(lag, sent - scheduled);
      seq += 1;
      const body = BODIES[seq % BODIES.length] ?? '';
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/mutate',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - sent);
            else errors += 1;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors += 1;
        resolve();
      });
      req.end(body);
    });
  const foreignBefore = foreignTicks(pid);
  const serverBefore = processTicks(pid);
  const started = performance.now();
  const end = started + seconds * 1000;
  if (fixedRate === undefined) {
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < end) await send(performance.now());
      }),
    );
  } else {
    const inFlight: Promise<void>[] = [];
    let sent = 0;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - started) / 1000) * fixedRate);
      for (; sent < due; sent += 1) inFlight.push(send(started + (sent * 1000) / fixedRate));
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inFlight);
  }
  const elapsed = (performance.now() - started) / 1000;
  const foreignAfter = foreignTicks(pid);
  const cpuMs = ((processTicks(pid) - serverBefore) * 1000) / TICKS_PER_SECOND / Math.max(latencies.length, 1);
  const share = (ticks: number): number => Math.max(0, ticks / (elapsed * TICKS_PER_SECOND));
  const others = {
    server: share(foreignAfter.server - foreignBefore.server),
    client: share(foreignAfter.client - foreignBefore.client),
  };
  clearInterval(sampler);
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors,
    peakRss,
    lag,
    cpuMs,
    others,
  };
}

/**
 * Pins every thread of this process (V8's GC helpers and the libuv pool too, not only the main thread) to the
 * load generator's CPU. taskset -a fails when a thread exits while it walks them, so it tries again.
 */
function pinToClientCpu(): void {
  for (let attempt = 1; ; attempt += 1) {
    try {
      execFileSync('taskset', ['-a', '-cp', CLIENT_CPU, String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
}

async function main(): Promise<void> {
  pinToClientCpu();
  // Loaded here, so the baseline server process (this file with --baseline) carries none of it.
  const { buildAll } = await import('../scripts/build.ts');
  const { createTestCa } = await import('../test/support/test-ca.ts');
  const ca = createTestCa();
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-bench-'));
  const leaf = ca.issue('127.0.0.1');
  writeFileSync(join(dir, 'tls.crt'), leaf.cert);
  writeFileSync(join(dir, 'tls.key'), leaf.key);
  BODIES.push(...Array.from({ length: 512 }, (_, i) => realisticReview(`bench-${i}`)));
  const bundle = (await buildAll(join(dir, 'dist'))).find((b) => b.name === 'webhook');
  if (bundle === undefined) throw new Error('the build made no webhook bundle');
  const size = Buffer.byteLength(BODIES[0] ?? '');
  process.stdout.write(
    `webhook benchmark: ${size} B reviews, ${CONNECTIONS} keep-alive TLS connections, ${SECONDS}s per run, Node ${process.version}, server on CPU ${SERVER_CPU}, load generator on CPU ${CLIENT_CPU}\n\n`,
  );
  const servers = [
    {
      name: 'sidekey webhook',
      args: [
        bundle.file,
        '--log-level',
        'info',
        '--port',
        '0',
        '--metrics-port',
        '0',
        '--tls-cert',
        join(dir, 'tls.crt'),
        '--tls-key',
        join(dir, 'tls.key'),
        '--sidecar-mode',
        'native',
        '--vault-addr',
        'https://vault.vault.svc:8200',
      ],
    },
    { name: 'baseline https', args: [SELF, '--baseline', join(dir, 'tls.crt'), join(dir, 'tls.key')] },
  ];
  const rows: string[] = [];
  const serverSide: string[] = [];
  const webhookP99s: number[] = [];
  try {
    for (const server of servers) {
      const { child, port, metricsPort } = await startServer(server.args);
      child.stdout.resume();
      const idle = rssMiB(child.pid ?? 0);
      const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS, ca: ca.caCert });
      // Warm-up: closed loop, so all the connections open and the JIT settles before anything is measured.
      await drive(port, agent, child.pid ?? 0, undefined, WARM_UP_SECONDS);
      const rounds = Array.from({ length: ROUNDS }, (_, i) => [`${FIXED_RATE}/s #${i + 1}`, FIXED_RATE] as const);
      const runs = [...rounds, ['saturation', undefined] as const];
      for (const [label, rate] of runs) {
        const before = metricsPort === undefined ? undefined : await serverBuckets(metricsPort);
        const r = await drive(port, agent, child.pid ?? 0, rate);
        if (server.name === 'sidekey webhook' && rate !== undefined) webhookP99s.push(r.p99);
        if (metricsPort !== undefined && before !== undefined)
          serverSide.push(`${label}: ${serverShare(before, await serverBuckets(metricsPort))}`);
        rows.push(
          `${server.name.padEnd(16)} ${label.padEnd(11)} ${r.rate.toFixed(0).padStart(7)}/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms  CPU ${r.cpuMs.toFixed(2)} ms/req  errors ${String(r.errors).padStart(3)}  lag ${rate === undefined ? '   -' : r.lag.toFixed(1).padStart(4)} ms  RSS idle ${idle.toFixed(0)} MiB, peak ${r.peakRss.toFixed(0)} MiB  others ${pct(r.others.server)}/${pct(r.others.client)}`,
        );
      }
      agent.destroy();
      child.kill('SIGTERM');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    ca.dispose();
  }
  process.stdout.write(`${'server'.padEnd(16)} ${'load'.padEnd(11)} admissions\n${rows.join('\n')}\n\n`);
  process.stdout.write(
    `time inside the webhook (its own histogram, body read to answer):\n  ${serverSide.join('\n  ')}\n`,
  );
  process.stdout.write(
    `machine load average (1 min) at the end: ${loadavg()[0]?.toFixed(1) ?? '?'} (a lag of many ms means the load generator itself was starved)\n`,
  );
  process.stdout.write(
    `others: the share of the server's / the load generator's CPU that other processes or the host took during the run; trust runs where both are near 0%\n`,
  );
  const median = [...webhookP99s].sort((a, b) => a - b)[Math.floor(webhookP99s.length / 2)] ?? Number.NaN;
  const verdict = median < TARGET_P99_MS ? 'meets' : 'MISSES';
  process.stdout.write(
    `target: p99 < ${TARGET_P99_MS} ms at ${FIXED_RATE}/s: ${verdict} (median of ${webhookP99s.length} rounds: ${median.toFixed(2)} ms)\n`,
  );
}

if (process.argv[2] === '--baseline') runBaseline(process.argv[3] ?? '', process.argv[4] ?? '');
else await main();
