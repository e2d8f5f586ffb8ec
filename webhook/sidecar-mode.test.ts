import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { clusterConfigured, resolveNativeSidecars, supportsNativeSidecars } from './sidecar-mode.ts';

const log = pino({ level: 'silent' });

void describe('sidecar mode', () => {
  void it('knows which versions run native sidecars', () => {
    const table: [string, string, boolean][] = [['1', '28', false], ['1', '29', true], ['1', '29+', true], ['1', '33', true], ['2', '0', true], ['1', '27+', false]];
    for (const [major, minor, native] of table) assert.equal(supportsNativeSidecars({ major, minor }), native, `${major}.${minor}`);
  });

  void it('uses native without reading anything when no cluster is configured', async () => {
    const readVersion = (): Promise<never> => Promise.reject(new Error('must not be called'));
    assert.equal(await resolveNativeSidecars('auto', { env: { HOME: '/nowhere' }, log, exists: () => false, readVersion }), true);
    assert.equal(await resolveNativeSidecars('classic', { env: {}, log, readVersion }), false);
    assert.equal(await resolveNativeSidecars('native', { env: {}, log, readVersion }), true);
  });

  void it('reads the cluster version when in-cluster or with a kubeconfig', async () => {
    const exists = (p: string): boolean => p === '/var/run/secrets/kubernetes.io/serviceaccount/token' || p === '/k/config';
    assert.equal(clusterConfigured({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, exists), true);
    assert.equal(clusterConfigured({ KUBECONFIG: '/missing:/k/config' }, exists), true);
    assert.equal(clusterConfigured({ KUBECONFIG: '/missing', HOME: '/h' }, exists), false);
    const old = await resolveNativeSidecars('auto', { env: { KUBECONFIG: '/k/config' }, log, exists, readVersion: () => Promise.resolve({ major: '1', minor: '28' }) });
    assert.equal(old, false);
    const failing = await resolveNativeSidecars('auto', { env: { KUBECONFIG: '/k/config' }, log, exists, readVersion: () => Promise.reject(new Error('unreachable')) });
    assert.equal(failing, true);
  });
});
