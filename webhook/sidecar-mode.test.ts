import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { startFakeKubeApi } from '../test/support/fake-kube-api.ts';
import { createTestCa, leafFiles } from '../test/support/test-ca.ts';
import { checkNativeSidecars, clusterConfigured, supportsNativeSidecars } from './sidecar-mode.ts';

const log = pino({ level: 'silent' });
const CLI = join(import.meta.dirname, '..', 'cli', 'sidekey.ts');
const TOO_OLD =
  /^Kubernetes 1\.28 has no native sidecars, which Sidekey's agent needs \(Kubernetes 1\.29\+; the chart requires 1\.30\): upgrade the cluster$/;

void describe('sidecar mode', () => {
  void it('knows which versions run native sidecars', () => {
    const table: [string, string, boolean][] = [
      ['1', '28', false],
      ['1', '29', true],
      ['1', '29+', true],
      ['1', '33', true],
      ['2', '0', true],
      ['1', '27+', false],
    ];
    for (const [major, minor, native] of table)
      assert.equal(supportsNativeSidecars({ major, minor }), native, `${major}.${minor}`);
  });

  void it('reads nothing when no cluster is configured, or with native', async () => {
    const readVersion = (): Promise<never> => Promise.reject(new Error('must not be called'));
    assert.equal(
      await checkNativeSidecars('auto', { env: { HOME: '/nowhere' }, log, exists: () => false, readVersion }),
      undefined,
    );
    assert.equal(
      await checkNativeSidecars('native', { env: { KUBECONFIG: '/k/config' }, log, exists: () => true, readVersion }),
      undefined,
    );
  });

  void it('reads the cluster version when in-cluster or with a kubeconfig, and refuses a cluster before 1.29', async () => {
    const exists = (p: string): boolean =>
      p === '/var/run/secrets/kubernetes.io/serviceaccount/token' || p === '/k/config';
    assert.equal(clusterConfigured({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, exists), true);
    assert.equal(clusterConfigured({ KUBECONFIG: '/missing:/k/config' }, exists), true);
    assert.equal(clusterConfigured({ KUBECONFIG: '/missing', HOME: '/h' }, exists), false);
    const at = (minor: string): Promise<string | undefined> =>
      checkNativeSidecars('auto', {
        env: { KUBECONFIG: '/k/config' },
        log,
        exists,
        readVersion: () => Promise.resolve({ major: '1', minor }),
      });
    assert.match((await at('28')) ?? '', TOO_OLD);
    assert.equal(await at('29'), undefined);
    const failing = await checkNativeSidecars('auto', {
      env: { KUBECONFIG: '/k/config' },
      log,
      exists,
      readVersion: () => Promise.reject(new Error('unreachable')),
    });
    assert.equal(failing, undefined, 'a version it cannot read does not stop the webhook');
  });

  void it('sidekey webhook exits 1 at start on a Kubernetes 1.28 API server, saying why', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sidekey-sidecar-mode-'));
    const api = await startFakeKubeApi(join(dir, 'kubeconfig'), '28');
    t.after(async () => {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // The fake API speaks plain HTTP, which @kubernetes/client-node accepts only with TLS verification off.
    const kubeconfig = JSON.parse(readFileSync(api.kubeconfig, 'utf8')) as {
      clusters: { cluster: Record<string, unknown> }[];
    };
    for (const { cluster } of kubeconfig.clusters) cluster['insecure-skip-tls-verify'] = true;
    writeFileSync(api.kubeconfig, JSON.stringify(kubeconfig));
    const ca = createTestCa();
    const { dir: tlsDir, tlsCert, tlsKey } = leafFiles(ca, 'old-cluster');
    t.after(() => {
      rmSync(tlsDir, { recursive: true, force: true });
      ca.dispose();
    });
    const child = spawn(
      process.execPath,
      [CLI, 'webhook', '--port', '0', '--metrics-port', '0', '--tls-cert', tlsCert, '--tls-key', tlsKey],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, KUBECONFIG: api.kubeconfig },
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // Started after all: stop it, so the test fails instead of waiting.
      if (out.includes('"event":"listening"')) child.kill('SIGTERM');
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    const failed = out
      .split('\n')
      .filter((l) => l.includes('"event":"start_failed"'))
      .map((l) => JSON.parse(l) as { err: { message: string } });
    assert.equal(failed.length, 1, out);
    assert.match(failed[0]?.err.message ?? '', TOO_OLD);
    assert.doesNotMatch(out, /"event":"listening"/);
  });
});
