// /status of the real `sidekey agent` process (the embedded file store, a real loopback reload endpoint), read
// as `sidekey status` reads it: validated with the shared schema, then printed as its table and JSON. A secret
// that disappears from the store shows as failing with its code while the last good files stay; no value, no
// content hash and no error message appears anywhere. The path through the API server is test/cluster/e2e.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { freePort, reloadEndpoint, sidecarConfig, startAgent, until } from '../agent/testdata/agent-process.ts';
import { parseAgentStatus, type AgentStatus } from '../agent/status-schema.ts';
import { exitCodeOf, formatJson, formatTable, type PodReport } from './status-report.ts';

const SECRETS = ['pw-status-3c1a', 'tok-status-9e42', 'pw-status-rotated-77b0'];

async function readStatus(port: number): Promise<{ body: string; status: AgentStatus }> {
  const answer = await fetch(`http://127.0.0.1:${port}/status`);
  assert.equal(answer.status, 200);
  const body = await answer.text();
  const parsed = parseAgentStatus(body);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  return { body, status: parsed.value };
}

async function agent(t: TestContext): Promise<{ port: number; store: string; secrets: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'sidekey-status-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const store = path.join(root, 'store');
  const secrets = path.join(root, 'secrets');
  await mkdir(path.join(store, 'payments'), { recursive: true });
  await writeFile(path.join(store, 'payments/db.yaml'), `username: app\npassword: ${SECRETS[0] ?? ''}\n`);
  await writeFile(path.join(store, 'payments/api.json'), JSON.stringify({ token: SECRETS[1] }));
  const reload = await reloadEndpoint(t);
  const port = await freePort();
  const config = sidecarConfig(secrets, port, {
    files: [
      { name: 'password', ref: { provider: 'file', path: 'payments/db', field: 'password' } },
      { name: 'auth-header', ref: { provider: 'file', path: 'payments/api' }, template: 'Bearer {{ .token }}' },
    ],
    reload: { kind: 'http', url: reload.url },
  });
  startAgent(t, config, { SIDEKEY_FILE_STORE: store }, SECRETS);
  return { port, store, secrets };
}

void describe('the agent /status and sidekey status output', () => {
  void it('fresh, then a reload counted, then a missing secret failing with its code and the last good files kept', async (t) => {
    const { port, store, secrets } = await agent(t);
    await until('fresh', async () => (await readStatus(port)).status.state === 'fresh');
    const fresh = (await readStatus(port)).status;
    assert.equal(fresh.mode, 'sidecar');
    assert.deepEqual(fresh.counts, { fresh: 2, stale: 0, failing: 0 });
    assert.deepEqual(fresh.reloads, { kind: 'http', ok: 0, failed: 0 }, 'the first write is no reload');
    assert.deepEqual(
      fresh.files.map((f) => [f.name, f.reference, f.next, f.version, f.lease]),
      [
        ['password', 'file:payments/db#password', 'fetch', undefined, undefined],
        ['auth-header', 'file:payments/api', 'fetch', undefined, undefined],
      ],
      'references as annotated; the store version is a content hash and is not shown',
    );
    assert.ok(
      fresh.files.every((f) => f.lastGoodAt !== undefined && Date.parse(f.nextRefreshAt) > Date.parse(f.lastGoodAt)),
    );

    await writeFile(path.join(store, 'payments/db.yaml'), `username: app\npassword: ${SECRETS[2] ?? ''}\n`);
    await until('the reload', async () => (await readStatus(port)).status.reloads.ok === 1, 15_000);
    assert.equal((await readStatus(port)).status.reloads.last?.result, 'ok');

    await rm(path.join(store, 'payments/api.json'));
    await until('failing', async () => (await readStatus(port)).status.state === 'failing');
    const { body, status } = await readStatus(port);
    assert.deepEqual(status.counts, { fresh: 1, stale: 0, failing: 1 });
    const failing = status.files[0];
    assert.ok(failing !== undefined);
    assert.equal(failing.name, 'auth-header', 'failing files come first');
    assert.equal(failing.lastError?.code, 'NOT_FOUND');
    assert.ok(failing.lastError.failures >= 1);
    assert.equal(await readFile(path.join(secrets, 'auth-header'), 'utf8'), `Bearer ${SECRETS[1] ?? ''}`);

    const report: PodReport = { namespace: 'e2e', name: 'payments-7d9', state: status.state, status };
    const unreachable: PodReport = {
      namespace: 'e2e',
      name: 'starting',
      state: 'unreachable',
      reason: 'HTTP 503 from the pod proxy',
    };
    const table = formatTable([report, unreachable], false);
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^POD +STATE +FILES fresh\/stale\/failing +LAST ERROR +LAST REFRESH +RELOADS$/);
    assert.match(
      lines[1] ?? '',
      /^payments-7d9 +failing +1\/0\/1 +NOT_FOUND \(auth-header\) +\d+s ago +1 \(last ok \d+s ago\)$/,
    );
    assert.match(lines[2] ?? '', /^starting +unreachable +- +HTTP 503 from the pod proxy +- +-$/);
    assert.match(formatTable([report], true).split('\n')[1] ?? '', /^e2e +payments-7d9 +failing/);
    const json = JSON.parse(formatJson([report, unreachable])) as { pods: PodReport[] };
    assert.deepEqual(json.pods, [report, unreachable]);
    assert.equal(exitCodeOf([report]), 1);
    assert.equal(
      exitCodeOf([
        { ...report, state: 'stale' },
        { ...unreachable, state: 'init-only' },
        { ...unreachable, state: 'finished' },
      ]),
      0,
    );
    for (const text of [body, table])
      for (const hidden of [...SECRETS, 'document in the store'])
        assert.ok(!text.includes(hidden), `${hidden} is not in the status or the table`);
  });

  void it('says what is wrong with the command line or the cluster configuration, exit 2', () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
      spawnSync(process.execPath, [path.join(import.meta.dirname, 'sidekey.ts'), 'status', ...args], {
        encoding: 'utf8',
        env,
      });
    const cases: [string[], RegExp][] = [
      [['-o', 'yaml'], /-o must be table or json, not "yaml"/],
      [['-A', 'pod-1'], /-A lists every namespace: drop -n and POD, or drop -A/],
      [['a', 'b'], /one POD at most, got 2/],
      [['--timeout', '0'], /--timeout takes seconds between 0 and 300, e.g. --timeout 10, not "0"/],
      [['--watch'], /unknown option "--watch"/],
    ];
    for (const [args, message] of cases) {
      const result = run(args);
      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, message);
      assert.match(result.stderr, /usage: sidekey status/);
    }
    const noCluster = run([], { PATH: process.env.PATH, HOME: path.join(tmpdir(), 'sidekey-no-home') });
    assert.equal(noCluster.status, 2);
    assert.equal(
      noCluster.stderr,
      'sidekey status: no cluster configured: pass --kubeconfig, set KUBECONFIG, write ~/.kube/config, or run inside a pod\n',
    );
  });

  void it('reads the kubeconfig and context it is given, and names a context that is not there', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sidekey-kubeconfig-'));
    const file = path.join(dir, 'config');
    // Two contexts on a closed port: which one was used shows in the namespace the list call names.
    const context = (name: string, namespace: string) => ({
      name,
      context: { cluster: 'closed', user: 'u', namespace },
    });
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'closed', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'u', user: { token: 'not-a-real-token' } }],
        contexts: [context('a', 'team-a'), context('b', 'team-b')],
        'current-context': 'a',
      }),
    );
    const env = { PATH: process.env.PATH, HOME: path.join(tmpdir(), 'sidekey-no-home') };
    const run = (args: string[]) =>
      spawnSync(process.execPath, [path.join(import.meta.dirname, 'sidekey.ts'), 'status', ...args], {
        encoding: 'utf8',
        env,
      });
    try {
      const current = run(['--kubeconfig', file]);
      assert.equal(current.status, 2);
      assert.match(current.stderr, /cannot list pods in namespace "team-a"/);
      const other = run(['--kubeconfig', file, '--context', 'b']);
      assert.equal(other.status, 2);
      assert.match(other.stderr, /cannot list pods in namespace "team-b"/);
      const missing = run(['--kubeconfig', file, '--context', 'c']);
      assert.equal(missing.status, 2);
      assert.equal(missing.stderr, 'sidekey status: the kubeconfig has no context "c" (it has: a, b)\n');
      const unreadable = run(['--kubeconfig', path.join(dir, 'absent')]);
      assert.equal(unreadable.status, 2);
      assert.match(unreadable.stderr, /^sidekey status: cannot read the kubeconfig: .*ENOENT/);
      assert.ok(![current, other, missing].some((r) => r.stderr.includes('not-a-real-token')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
