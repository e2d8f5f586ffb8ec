// How agents reach their backends: a Vault behind a private CA (OpenBao -dev-tls, its own CA) trusted from the
// configuration's PEM or a mounted file, refused with the TLS reason without it; and both backends' clients
// through a real forward proxy (HTTPS_PROXY / HTTP_PROXY), honouring NO_PROXY. Real OpenBao, moto and proxy.
import assert from 'node:assert/strict';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { VaultSettings } from '../../injector/agent-config.ts';
import type { SecretReference } from '../../injector/reference.ts';
import { startEgressProxy } from '../../test/support/egress-proxy.ts';
import type { EgressProxy } from '../../test/support/egress-proxy.ts';
import { irsaEnv, startMoto } from '../../devkit/backends/moto.ts';
import type { MotoHandle } from '../../devkit/backends/moto.ts';
import { assertNoLeak } from '../../test/support/no-leak.ts';
import { startOpenBao } from '../../devkit/backends/openbao.ts';
import type { OpenBaoHandle } from '../../devkit/backends/openbao.ts';
import { testDeps } from '../../test/support/provider-deps.ts';
import { createTestCa, leafFiles } from '../../test/support/test-ca.ts';
import type { FetchOutcome } from '../provider.ts';
import { createAwsProvider } from '../../providers/aws/agent/aws.ts';
import { createVaultProvider } from '../../providers/vault/agent/vault.ts';

let bao: OpenBaoHandle;
let moto: MotoHandle;
let proxy: EgressProxy;
let dir: string;
let caPem: string;
const values = { vault: `v-${randomBytes(12).toString('hex')}`, aws: `a-${randomBytes(12).toString('hex')}` };
const vaultRef: SecretReference = { provider: 'vault', path: 'secret/app', field: 'token' };
const awsRef: SecretReference = { provider: 'aws', path: 'egress/db' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sidekey-egress-'));
  [bao, moto, proxy] = await Promise.all([startOpenBao({ tls: true }), startMoto(), startEgressProxy()]);
  caPem = readFileSync(bao.caFile ?? '', 'utf8');
  await bao.api('POST', 'secret/data/app', { data: { token: values.vault } });
  await moto.admin.send(new CreateSecretCommand({ Name: 'egress/db', SecretString: values.aws }));
  writeFileSync(join(dir, 'root-token'), bao.rootToken);
  writeFileSync(
    join(dir, 'irsa-token'),
    'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwOmFwcCJ9.c2ln',
  );
});

after(async () => {
  await Promise.all([bao.stop(), moto.stop(), proxy.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function vaultSettings(trust: Partial<Pick<VaultSettings, 'caCert' | 'caFile'>>): VaultSettings {
  return { addr: bao.addr, auth: 'token', authPath: 'token', tokenFile: join(dir, 'root-token'), ...trust };
}

function value(outcome: FetchOutcome | undefined): unknown {
  assert.ok(outcome?.ok, outcome?.ok === false ? `${outcome.error.code}: ${outcome.error.message}` : 'no outcome');
  return outcome.fetched.value;
}

void describe('Vault behind a private CA (OpenBao -dev-tls)', () => {
  void test('trusts the CA given as PEM in the configuration or as a mounted file', async () => {
    for (const trust of [{ caCert: caPem }, { caFile: bao.caFile ?? '' }]) {
      const p = createVaultProvider(testDeps({ vault: vaultSettings(trust) }).deps);
      assert.deepEqual(value((await p.fetchMany([vaultRef]))[0]), { kind: 'object', value: { token: values.vault } });
      await p.close();
    }
  });

  void test("without the CA: TLS_VERIFY_FAILED naming OpenSSL's reason and the fix, nothing leaked", async () => {
    const t = testDeps({ vault: vaultSettings({}) });
    const p = createVaultProvider({ ...t.deps, log: t.deps.log.child({ provider: 'vault' }) });
    const [outcome] = await p.fetchMany([vaultRef]);
    assert.ok(outcome !== undefined && !outcome.ok);
    assert.equal(outcome.error.code, 'TLS_VERIFY_FAILED');
    assert.match(
      outcome.error.message,
      /TLS verification failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\): the server's certificate is not signed by a CA the agent trusts; give the agent the Vault CA \(the webhook's vault.caCert or vault.caFrom, or sidekey.io\/vault-ca on the pod\)/,
    );
    assertNoLeak([outcome.error.message, t.logs()], [values.vault, bao.rootToken]);
    await p.close();
  });

  void test('a mounted CA file that holds no CA certificate is a CONFIG error naming the file', () => {
    const notCa = join(dir, 'not-a-ca.pem');
    writeFileSync(notCa, readFileSync(join(bao.caFile ?? '', '..', 'vault-cert.pem')));
    assert.throws(() => createVaultProvider(testDeps({ vault: vaultSettings({ caFile: notCa }) }).deps), {
      name: 'ProviderError',
      message: `vault: the CA file ${notCa}, PEM block 1 is not a CA certificate (basicConstraints CA:FALSE, e.g. the server's own certificate): give the CA that signed the Vault server's certificate`,
    });
  });
});

void describe('egress proxy (HTTPS_PROXY / HTTP_PROXY / NO_PROXY)', () => {
  /** The SDK's web-identity credentials (IRSA) come from process.env, as in an agent container. */
  async function withIrsa<T>(run: () => Promise<T>): Promise<T> {
    const saved = { ...process.env };
    for (const name of [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_PROFILE',
      'HTTPS_PROXY',
      'HTTP_PROXY',
      'NO_PROXY',
    ])
      Reflect.deleteProperty(process.env, name);
    Object.assign(process.env, { ...irsaEnv(join(dir, 'irsa-token'), 'sidekey-egress'), AWS_REGION: moto.region });
    try {
      return await run();
    } finally {
      process.env = saved;
    }
  }

  async function fetchBoth(env: Readonly<Record<string, string>>, awsEndpoint: string): Promise<void> {
    await withIrsa(async () => {
      Object.assign(process.env, { AWS_ENDPOINT_URL: awsEndpoint });
      const vault = createVaultProvider(testDeps({ vault: vaultSettings({ caCert: caPem }) }, env).deps);
      const aws = createAwsProvider(
        testDeps({ aws: { region: moto.region } }, { ...env, AWS_ENDPOINT_URL: awsEndpoint }).deps,
      );
      assert.deepEqual(value((await vault.fetchMany([vaultRef]))[0]), {
        kind: 'object',
        value: { token: values.vault },
      });
      assert.deepEqual(value((await aws.fetchMany([awsRef]))[0]), { kind: 'text', value: values.aws });
      await Promise.all([vault.close(), aws.close()]);
    });
  }

  void test('Vault over https tunnels through CONNECT; AWS Secrets Manager and its STS login go through the proxy', async () => {
    proxy.reset();
    await fetchBoth({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url }, moto.endpoint);
    const vaultHost = new URL(bao.addr).host;
    const motoHost = new URL(moto.endpoint).host;
    // One tunnel (keep-alive) carries the Vault calls; moto is plain http here, so each AWS call is a forwarded
    // request: the STS login (IRSA) and the read, both through the proxy.
    assert.deepEqual(proxy.seen(), [`CONNECT ${vaultHost}`, `POST ${motoHost}`, `POST ${motoHost}`]);
  });

  void test('NO_PROXY: a listed host is reached directly, the others still through the proxy', async () => {
    proxy.reset();
    const motoByName = moto.endpoint.replace('127.0.0.1', 'localhost');
    await fetchBoth(
      { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: `${new URL(bao.addr).hostname},.svc.cluster.local` },
      motoByName,
    );
    assert.deepEqual(
      proxy.seen(),
      [`POST ${new URL(motoByName).host}`, `POST ${new URL(motoByName).host}`],
      'Vault (listed) went direct, AWS through the proxy',
    );
    proxy.reset();
    await fetchBoth(
      { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: `${new URL(bao.addr).hostname},localhost` },
      motoByName,
    );
    assert.deepEqual(proxy.seen(), [], 'both listed: nothing through the proxy');
  });

  void test('AWS over https (moto with a certificate from a private test CA) goes through a CONNECT tunnel', async () => {
    const testCa = createTestCa();
    const leaf = leafFiles(testCa, 'moto');
    // The agent image trusts what the system trusts; here the process-wide default roots gain the test CA.
    const roots = getCACertificates('default');
    setDefaultCACertificates([...roots, testCa.caCert]);
    const secure = await startMoto({ tls: { certFile: leaf.tlsCert, keyFile: leaf.tlsKey } });
    try {
      await secure.admin.send(new CreateSecretCommand({ Name: 'egress/db', SecretString: values.aws }));
      proxy.reset();
      await withIrsa(async () => {
        Object.assign(process.env, { AWS_ENDPOINT_URL: secure.endpoint });
        const env = { HTTPS_PROXY: proxy.url, AWS_ENDPOINT_URL: secure.endpoint };
        const aws = createAwsProvider(testDeps({ aws: { region: secure.region } }, env).deps);
        assert.deepEqual(value((await aws.fetchMany([awsRef]))[0]), { kind: 'text', value: values.aws });
        await aws.close();
      });
      const seen = proxy.seen();
      assert.ok(
        seen.length > 0 && seen.every((s) => s === `CONNECT ${new URL(secure.endpoint).host}`),
        seen.join(', '),
      );
    } finally {
      setDefaultCACertificates(roots);
      await secure.stop();
      rmSync(leaf.dir, { recursive: true, force: true });
      testCa.dispose();
    }
  });

  void test('without proxy variables nothing goes through the proxy', async () => {
    proxy.reset();
    await fetchBoth({}, moto.endpoint);
    assert.deepEqual(proxy.seen(), []);
  });
});
