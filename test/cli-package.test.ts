// The installable CLI as a user gets it: built, packed with `npm pack`, installed with `npm install -g` into
// an empty prefix (no registry needed: the package has no dependencies) and run from there, outside the
// repository, as `sidekey` and as the kubectl plugin `kubectl sidekey`.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAll, ROOT } from '../scripts/build.ts';
import { packageCli } from '../scripts/package-cli.ts';
import { requireTool } from '../devkit/process.ts';
import { defined } from '../injector/defined.ts';

const KUBECTL = requireTool(join(ROOT, '.tools', 'cluster', 'bin', 'kubectl'), 'kubectl (npm run setup builds it)');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const scratch = mkdtempSync(join(tmpdir(), 'sidekey-cli-package-'));
const prefix = join(scratch, 'prefix');
const home = join(scratch, 'home');
/** Only the installed bin, the pinned Node 24 and the system's basics: nothing from the checkout. */
const env: NodeJS.ProcessEnv = {
  PATH: [join(prefix, 'bin'), dirname(process.execPath), dirname(KUBECTL), '/usr/bin', '/bin'].join(':'),
  HOME: home,
  npm_config_cache: join(scratch, 'npm-cache'),
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

function sh(cmd: string, args: readonly string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: home, env, encoding: 'utf8', ...defined({ input }) });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: payments
  annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:prod/db#password"}
spec:
  securityContext: {runAsUser: 1000}
  containers: [{name: app, image: app}]
`;

before(async () => {
  mkdirSync(home, { recursive: true });
  const built = join(scratch, 'dist');
  await buildAll(built);
  const folder = packageCli(built, join(scratch, 'package'));
  execFileSync('npm', ['pack', folder, '--pack-destination', scratch], { cwd: scratch, env, stdio: 'pipe' });
  const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
  assert.equal(tarball, `sidekey-${VERSION}.tgz`);
  execFileSync('npm', ['install', '-g', '--prefix', prefix, join(scratch, tarball)], { cwd: home, env, stdio: 'pipe' });
  writeFileSync(join(home, 'pod.yaml'), POD);
});
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

void describe('the packed CLI, installed into an empty prefix', () => {
  void test('holds built JavaScript only, and puts sidekey and kubectl-sidekey on PATH', () => {
    const installed = join(prefix, 'lib', 'node_modules', 'sidekey');
    const files = readdirSync(installed, { recursive: true }).map(String).sort();
    assert.deepEqual(files, ['README.md', 'bin', 'bin/sidekey.mjs', 'package.json', 'sidekey.mjs']);
    assert.ok(!files.some((f) => f.endsWith('.ts')));
    for (const name of ['sidekey', 'kubectl-sidekey']) assert.ok(existsSync(join(prefix, 'bin', name)), name);
  });

  void test('--version, and the usage for what it does not know', () => {
    assert.deepEqual(sh('sidekey', ['--version']), { status: 0, stdout: `sidekey ${VERSION}\n`, stderr: '' });
    const unknown = sh('sidekey', ['--frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^sidekey: unknown option "--frobnicate"\nusage: sidekey <command>/);
    const badFlag = sh('sidekey', ['render', '--frobnicate']);
    assert.equal(badFlag.status, 2);
    assert.match(badFlag.stderr, /^sidekey render: unknown option "--frobnicate"\nusage: sidekey render/);
  });

  void test('render and lint work outside the repository', () => {
    const rendered = sh('sidekey', ['render', '--aws-region', 'eu-west-1', '-f', 'pod.yaml', '-o', 'json']);
    assert.equal(rendered.status, 0, rendered.stderr);
    const list = JSON.parse(rendered.stdout) as {
      items: { metadata: { labels: Partial<Record<string, string>> }; spec: { initContainers: { name: string }[] } }[];
    };
    const [pod] = list.items;
    assert.ok(pod !== undefined);
    assert.equal(pod.spec.initContainers[0]?.name, 'sidekey-agent');
    assert.equal(pod.metadata.labels['sidekey.io/injected'], 'true');
    assert.deepEqual(sh('sidekey', ['lint', '--aws-region', 'eu-west-1', '-f', '.']), {
      status: 0,
      stdout: '',
      stderr: '',
    });
    const bad = sh('sidekey', ['lint', '-f', '-'], POD.replace('#password', '#'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^<stdin>: Pod\/payments: annotation "sidekey\.io\/secret-db": /);
  });

  void test('migrate rewrites vault-k8s annotations read from stdin, for lint to pass', () => {
    const vaultK8s = POD.replace(
      'annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:prod/db#password"}',
      'annotations: {vault.hashicorp.com/agent-inject: "true", vault.hashicorp.com/role: app, vault.hashicorp.com/agent-inject-secret-db: secret/data/db}',
    );
    const migrated = sh('sidekey', ['migrate', '-'], vaultK8s);
    assert.equal(migrated.status, 0, migrated.stderr);
    assert.match(migrated.stdout, /"sidekey\.io\/secret-db": "vault:secret\/db"/);
    assert.match(migrated.stderr, /3 translated, 0 left untranslated/);
    assert.deepEqual(
      sh('sidekey', ['lint', '--vault-addr', 'https://vault.example:8200', '-f', '-'], migrated.stdout),
      {
        status: 0,
        stdout: '',
        stderr: '',
      },
    );
  });

  void test('kubectl runs it as a plugin', () => {
    const plugins = sh('kubectl', ['plugin', 'list']);
    assert.match(plugins.stdout, /kubectl-sidekey/);
    assert.deepEqual(sh('kubectl', ['sidekey', '--version']), {
      status: 0,
      stdout: `sidekey ${VERSION}\n`,
      stderr: '',
    });
    assert.match(sh('kubectl', ['sidekey']).stdout, /^usage: kubectl sidekey <command>/);
  });
});
