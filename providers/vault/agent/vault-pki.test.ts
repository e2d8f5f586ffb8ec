// Vault PKI certificates against OpenBao's real pki engine (a generated root CA, a role limited to svc.test):
// the provider issuing one certificate for all the files of a reference, a role refusing the common name, and the
// real `sidekey agent` process keeping a running TLS server (the stand-in app, devkit/apps/reader.ts) on a fresh
// certificate: re-issued before expiry, reloaded with one SIGHUP, served without a restart, the last good files
// kept while the role refuses, and issued at once by a restarted agent. No private key ever reaches a log line or
// the test output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { AgentConfig, FileSpec } from '../../../injector/agent-config.ts';
import { RELOAD_TARGET_ENV } from '../../../injector/constants.ts';
import type { SecretReference } from '../../../injector/reference.ts';
import type { FetchOutcome } from '../../../agent/provider.ts';
import { freePort, metrics, sample, startAgent, status, until } from '../../../agent/testdata/agent-process.ts';
import { startOpenBao } from '../../../devkit/backends/openbao.ts';
import type { OpenBaoHandle } from '../../../devkit/backends/openbao.ts';
import { testDeps } from '../../../test/support/provider-deps.ts';
import { createVaultProvider } from './vault.ts';

const READER = join(import.meta.dirname, '../../../devkit/apps/reader.ts');
const ROLE_PATH = 'pki/issue/web';
const POLICY = `path "${ROLE_PATH}" { capabilities = ["update"] }`;

const ROLE = { role: 'web', allowedDomains: ['svc.test'], maxTtl: '1h' } as const;

let bao: OpenBaoHandle;
let rootCa: string;
let dir: string;
let tokenFile: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sidekey-pki-test-'));
  bao = await startOpenBao();
  rootCa = await bao.setupPki('pki', ROLE);
  await bao.writePolicy('pki-web', POLICY);
  const k8s = await bao.setupKubernetes('web', ['pki-web'], 'payments', 'web');
  tokenFile = join(dir, 'sa-token');
  writeFileSync(tokenFile, k8s.token);
});

after(async () => {
  await bao.stop();
  rmSync(dir, { recursive: true, force: true });
});

const vaultSettings = (): NonNullable<AgentConfig['vault']> => ({
  addr: bao.addr,
  auth: 'kubernetes',
  authPath: 'kubernetes',
  role: 'web',
  tokenFile,
});

const certRef = (query: string, field?: string): SecretReference => ({
  provider: 'vault',
  path: ROLE_PATH,
  query,
  ...(field === undefined ? {} : { field }),
});

/** The base64 body of a PEM private key: what a leak of it would show. */
function keyBody(pem: string): string {
  return pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'))[0] ?? pem;
}

function fields(outcome: FetchOutcome | undefined): Record<string, string> {
  assert.ok(outcome?.ok === true, outcome?.ok === false ? `${outcome.error.code}: ${outcome.error.message}` : 'none');
  assert.equal(outcome.fetched.value.kind, 'object');
  return outcome.fetched.value.value as Record<string, string>;
}

void describe('vault provider: PKI issue', () => {
  void test('one issue serves the certificate, key and CA files of one reference; the key matches', async () => {
    const t = testDeps({ vault: vaultSettings() });
    const provider = createVaultProvider(t.deps);
    try {
      const query = 'alt_names=api.svc.test&common_name=web.svc.test&ip_sans=10.0.0.7&ttl=10m';
      const outcomes = await provider.fetchMany([
        certRef(query, 'certificate'),
        certRef(query, 'private_key'),
        certRef(query, 'ca_chain'),
      ]);
      const got = fields(outcomes[0]);
      assert.equal(t.calls.filter((c) => c === 'vault:pki/issue').length, 1, 'one issue for the three files');
      assert.deepEqual(fields(outcomes[1]), got);
      const cert = new X509Certificate(got.certificate ?? '');
      assert.ok(cert.checkPrivateKey(createPrivateKey(got.private_key ?? '')), 'the key belongs to the certificate');
      assert.ok(cert.checkIssued(new X509Certificate(rootCa)), 'issued by the root');
      assert.equal(got.ca_chain, got.issuing_ca, 'a root-issued chain is the root');
      assert.match(cert.subject, /CN=web\.svc\.test/);
      assert.match(cert.subjectAltName ?? '', /DNS:api\.svc\.test/);
      assert.match(cert.subjectAltName ?? '', /IP Address:10\.0\.0\.7/);
      const outcome = outcomes[0];
      assert.ok(outcome?.ok === true);
      assert.equal(outcome.fetched.expiresAt, cert.validToDate.getTime());
      assert.equal(outcome.fetched.version, got.serial_number);
      assert.ok(!t.logs().includes(keyBody(got.private_key ?? '')), 'the private key reached a log line');
    } finally {
      await provider.close();
    }
  });

  void test('a role that refuses the common name: ISSUE_REFUSED naming the role and Vault’s reason', async () => {
    const t = testDeps({ vault: vaultSettings() });
    const provider = createVaultProvider(t.deps);
    try {
      const [outcome] = await provider.fetchMany([certRef('common_name=web.evil.test', 'certificate')]);
      assert.ok(outcome?.ok === false, 'refused');
      assert.equal(outcome.error.code, 'ISSUE_REFUSED');
      assert.match(outcome.error.message, /^vault pki\/issue\/web: the role "web" refused the certificate request \(/);
      assert.match(outcome.error.message, /not allowed by this role/);
    } finally {
      await provider.close();
    }
  });
});

interface Served {
  readonly serial: string;
  readonly validTo: number;
}

/** What the TLS server presents now, as a client that trusts only the root sees it. */
async function served(port: number): Promise<Served> {
  const socket = connect({ host: '127.0.0.1', port, servername: 'web.svc.test', ca: rootCa });
  try {
    await once(socket, 'secureConnect');
    const peer = socket.getPeerX509Certificate();
    assert.ok(peer !== undefined);
    return { serial: peer.serialNumber, validTo: peer.validToDate.getTime() };
  } finally {
    socket.destroy();
  }
}

void describe('sidekey agent with Vault PKI (OpenBao)', () => {
  void test('re-issues before expiry, reloads the running TLS server once per certificate, keeps the last good files while the role refuses, issues at once after a restart', async (t) => {
    const secrets = join(dir, 'secrets');
    const container = `tls-app-${randomBytes(4).toString('hex')}`;
    // A 20 s certificate (admission asks at least 1m; the agent takes what its configuration says), re-issued
    // at about 2/3 of it.
    const query = 'common_name=web.svc.test&ttl=20s';
    const file = (name: string, field: string): FileSpec => ({ name, ref: certRef(query, field) });
    const port = await freePort();
    const config: AgentConfig = {
      version: 1,
      mode: 'sidecar',
      role: 'run',
      secretsDir: secrets,
      port,
      fileMode: 0o400,
      files: [
        file('tls.crt', 'certificate'),
        file('tls.key', 'private_key'),
        file('ca.crt', 'issuing_ca'),
        file('chain.pem', 'ca_chain'),
      ],
      reload: { kind: 'signal', signal: 'SIGHUP', container },
      vault: vaultSettings(),
    };
    const agent = startAgent(t, config, {}, []);
    await until('the first certificate', async () => (await status(port, '/startup')) === 200, 20_000);
    const onDisk = (): X509Certificate => new X509Certificate(readFileSync(join(secrets, 'tls.crt')));
    const keys = new Set<string>([keyBody(readFileSync(join(secrets, 'tls.key'), 'utf8'))]);
    assert.equal(statSync(join(secrets, 'tls.key')).mode & 0o777, 0o400);
    assert.ok(onDisk().checkPrivateKey(createPrivateKey(readFileSync(join(secrets, 'tls.key')))));

    const appPort = await freePort();
    const tlsPort = await freePort();
    const app = spawn(process.execPath, [READER], {
      env: {
        ...process.env,
        [RELOAD_TARGET_ENV]: container,
        APP_SECRETS_DIR: secrets,
        APP_PORT: String(appPort),
        APP_TLS_PORT: String(tlsPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let appOut = '';
    app.stdout.on('data', (c: Buffer) => (appOut += c.toString()));
    app.stderr.on('data', (c: Buffer) => (appOut += c.toString()));
    t.after(() => app.kill('SIGKILL'));
    const appStatus = async (): Promise<{ pid: number; reloads: number }> => {
      const seen = (await (await fetch(`http://127.0.0.1:${appPort}/status`)).json()) as {
        pid: number;
        reloads: number;
      };
      return { pid: seen.pid, reloads: seen.reloads };
    };
    await until('the TLS server', async () => (await served(tlsPort)).serial !== '', 10_000);
    const first = await served(tlsPort);
    assert.equal(first.serial, onDisk().serialNumber, 'the server presents the certificate on disk');
    const { pid } = await appStatus();

    // Renewal: a new certificate reaches the running server, with one reload and no restart.
    await until('a re-issued certificate served', async () => (await served(tlsPort)).serial !== first.serial, 40_000);
    const second = await served(tlsPort);
    assert.ok(second.validTo > first.validTo);
    assert.equal(second.serial, onDisk().serialNumber);
    assert.deepEqual(await appStatus(), { pid, reloads: 1 });
    keys.add(keyBody(readFileSync(join(secrets, 'tls.key'), 'utf8')));
    const m = await metrics(port);
    assert.equal(
      sample(m, 'sidekey_agent_certificate_expiry_timestamp_seconds{file="tls.crt"}'),
      second.validTo / 1000,
    );
    assert.equal(sample(m, 'sidekey_agent_backend_calls_total{provider="vault",operation="pki/issue"}'), 2);

    // The role stops allowing the name: the next re-issue is refused, the last good files stay and are served.
    await bao.writePkiRole('pki', { ...ROLE, allowedDomains: ['other.test'] });
    await until('a refused re-issue', () => Promise.resolve(agent.output().includes('"code":"ISSUE_REFUSED"')), 40_000);
    assert.match(
      agent.output(),
      /the role \\"web\\" refused the certificate request \(common name web\.svc\.test not allowed/,
    );
    assert.equal(onDisk().serialNumber, second.serial, 'the last good certificate stays');
    assert.equal((await served(tlsPort)).serial, second.serial);
    const refused = await metrics(port);
    assert.ok(sample(refused, 'sidekey_agent_fetch_errors_total{provider="vault",code="ISSUE_REFUSED"}') >= 1);

    // Allowed again: a retry (with backoff) issues the next certificate, and the server takes it with one reload.
    await bao.writePkiRole('pki', ROLE);
    await until(
      'a certificate after the refusal',
      async () => (await served(tlsPort)).serial !== second.serial,
      40_000,
    );
    assert.equal((await served(tlsPort)).serial, onDisk().serialNumber);
    assert.deepEqual(await appStatus(), { pid, reloads: 2 });
    keys.add(keyBody(readFileSync(join(secrets, 'tls.key'), 'utf8')));

    // A restarted agent (a sidecar after a crash) keeps no state: it issues at once, replaces the set it finds on
    // the volume and reloads the app, which was running on it, once.
    const third = await served(tlsPort);
    agent.child.kill('SIGTERM');
    await agent.exited;
    const restarted = startAgent(t, config, {}, []);
    await until(
      'a certificate from the restarted agent',
      async () => (await served(tlsPort)).serial !== third.serial,
      20_000,
    );
    assert.equal((await served(tlsPort)).serial, onDisk().serialNumber);
    assert.deepEqual(await appStatus(), { pid, reloads: 3 });
    keys.add(keyBody(readFileSync(join(secrets, 'tls.key'), 'utf8')));
    for (const key of keys) {
      for (const output of [agent.output(), restarted.output(), appOut])
        assert.ok(!output.includes(key), 'a private key reached the agent or app output');
    }
  });
});
