// Vault provider against a real OpenBao dev server (+ a TLS one) and a real PostgreSQL for dynamic credentials.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { VaultSettings } from '../../../injector/agent-config.ts';
import type { SecretReference } from '../../../injector/reference.ts';
import type { FetchOutcome, Fetched, ProviderDeps } from '../../../agent/provider.ts';
import type { Timers } from '../../../agent/timers.ts';
import { READ_ALL_POLICY, startOpenBao } from '../../../devkit/backends/openbao.ts';
import type { KubernetesAuth, OpenBaoHandle } from '../../../devkit/backends/openbao.ts';
import { startPostgres } from '../../../devkit/backends/postgres.ts';
import type { PostgresHandle } from '../../../devkit/backends/postgres.ts';
import { testDeps } from '../../../test/support/provider-deps.ts';
import { createVaultProvider } from './vault.ts';
import { createVaultClient } from './vault-client.ts';
import type { VaultClient } from './vault-client.ts';

let bao: OpenBaoHandle;
let pg: PostgresHandle;
let k8s: KubernetesAuth;
let dir: string;
const written: string[] = [];
const secret = (): string => {
  const value = `v-${randomBytes(12).toString('hex')}`;
  written.push(value);
  return value;
};
const values = { kv1: '', kv2a: '', kv2b: '' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sidekey-vault-test-'));
  [bao, pg] = await Promise.all([startOpenBao(), startPostgres()]);
  await bao.enableKv('kv1', 1);
  await bao.enableKv('kv2', 2);
  await bao.writePolicy('read-all', READ_ALL_POLICY);
  await bao.writePolicy('kv2-only', 'path "kv2/data/*" { capabilities = ["read"] }');
  values.kv1 = secret();
  values.kv2a = secret();
  values.kv2b = secret();
  await bao.api('POST', 'kv1/app/db', { password: values.kv1, user: 'app' });
  await bao.api('POST', 'kv2/data/app/db', { data: { password: values.kv2a } });
  await bao.api('POST', 'kv2/data/app/db', { data: { password: values.kv2b } });
  await bao.setupDatabase(pg, { role: 'readonly', defaultTtl: '1m', maxTtl: '10m' });
  k8s = await bao.setupKubernetes('app', ['read-all'], 'payments', 'app');
  writeFileSync(join(dir, 'sa-token'), k8s.token);
});

after(async () => {
  await Promise.all([bao.stop(), pg.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

interface Harness {
  readonly p: ReturnType<typeof createVaultProvider>;
  readonly calls: string[];
  readonly logs: () => string;
  /** Moves the provider's clock forward (e.g. past the fresh-token window). */
  skew(ms: number): void;
}

function harness(
  vault: Partial<VaultSettings> & Pick<VaultSettings, 'auth' | 'authPath'>,
  options: Parameters<typeof createVaultProvider>[1] = {},
): Harness {
  const t = testDeps({ vault: { addr: bao.addr, ...vault } });
  let offset = 0;
  // The logger bound to the provider's name, as the agent hands it in.
  const deps: ProviderDeps = {
    ...t.deps,
    log: t.deps.log.child({ provider: 'vault' }),
    now: () => Date.now() + offset,
  };
  return { p: createVaultProvider(deps, options), calls: t.calls, logs: t.logs, skew: (ms) => (offset += ms) };
}

/**
 * A harness whose (real) client remembers the last token the provider sent, to revoke it behind the provider's back.
 */
function spiedHarness(vault: Parameters<typeof harness>[0]): Harness & { readonly token: () => string } {
  const inner = createVaultClient({ addr: bao.addr });
  let last = '';
  const remember = (token: string | undefined): void => {
    if (token !== undefined) last = token;
  };
  const client: VaultClient = {
    read(path, token, schema) {
      remember(token);
      return inner.read(path, token, schema);
    },
    write(path, body, token, schema) {
      remember(token);
      return inner.write(path, body, token, schema);
    },
  };
  return { ...harness(vault, { client }), token: () => last };
}

const k8sSettings = { auth: 'kubernetes', authPath: 'kubernetes', role: 'app', tokenFile: '' } as const;
const ref = (path: string, extra: Partial<SecretReference> = {}): SecretReference => ({
  provider: 'vault',
  path,
  ...extra,
});

function ok(outcome: FetchOutcome | undefined): Fetched {
  assert.ok(
    outcome?.ok === true,
    `expected success, got ${outcome?.ok === false ? `${outcome.error.code}: ${outcome.error.message}` : 'nothing'}`,
  );
  return outcome.fetched;
}
function failed(outcome: FetchOutcome | undefined, code: string): void {
  assert.ok(outcome?.ok === false, 'expected a failure');
  assert.equal(outcome.error.code, code, outcome.error.message);
}
function noSecretsIn(text: string): void {
  for (const value of written) assert.ok(!text.includes(value), 'a secret value reached a log line');
  assert.doesNotMatch(text, /"provider":.*"provider":/, 'a log line repeats the provider key');
}

void describe('vault provider (OpenBao)', () => {
  void test('kubernetes auth; KV v1 and v2 detected from the mount; versions and @version', async () => {
    const h = harness({ ...k8sSettings, tokenFile: join(dir, 'sa-token') });
    const [v1, v2, v2old, v1field] = await h.p.fetchMany([
      ref('kv1/app/db'),
      ref('kv2/app/db'),
      ref('kv2/app/db', { version: '1' }),
      ref('kv1/app/db', { field: 'password' }),
    ]);
    assert.deepEqual(ok(v1).value, { kind: 'object', value: { password: values.kv1, user: 'app' } });
    assert.match(ok(v1).version, /^sha256:/);
    assert.equal(ok(v1).displayVersion, undefined, 'a content hash is not shown on /status');
    assert.deepEqual(ok(v1field), ok(v1));
    assert.deepEqual(ok(v2).value, { kind: 'object', value: { password: values.kv2b } });
    assert.equal(ok(v2).version, '2');
    assert.equal(ok(v2).displayVersion, '2');
    assert.deepEqual(ok(v2old).value, { kind: 'object', value: { password: values.kv2a } });
    assert.equal(ok(v2old).version, '1');
    assert.equal(h.calls.filter((c) => c === 'vault:login').length, 1);
    assert.equal(h.calls.filter((c) => c === 'vault:sys/mounts').length, 2, 'one mount lookup per mount, cached');
    assert.ok(k8s.reviewer.reviews() >= 1);

    // KV v1 content change changes the version; the same content keeps it.
    const again = await h.p.fetchMany([ref('kv1/app/db')]);
    assert.equal(ok(again[0]).version, ok(v1).version);
    await bao.api('POST', 'kv1/app/db', { user: 'app', password: values.kv1, extra: 'x' });
    assert.notEqual(ok((await h.p.fetchMany([ref('kv1/app/db')]))[0]).version, ok(v1).version);
    await bao.api('POST', 'kv1/app/db', { password: values.kv1, user: 'app' });

    const [missing, kv1Version, gone] = await h.p.fetchMany([
      ref('kv2/app/none'),
      ref('kv1/app/db', { version: '1' }),
      ref('kv2/app/db', { version: '9' }),
    ]);
    failed(missing, 'NOT_FOUND');
    failed(kv1Version, 'CONFIG');
    failed(gone, 'NOT_FOUND');
    noSecretsIn(h.logs());
    await h.p.close();
  });

  void test('403 logs in again, re-reading the token file (kubelet rotated it); a denied path is PERMISSION_DENIED', async () => {
    const tokenFile = join(dir, 'sa-token-rotating');
    writeFileSync(tokenFile, k8s.token);
    const h = spiedHarness({ ...k8sSettings, tokenFile });
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    const first = h.token();
    // Rotate the service-account token and revoke the Vault token behind the agent's back.
    k8s.reviewer.invalidate(k8s.token);
    const rotated = k8s.reviewer.mintServiceAccountToken('payments', 'app');
    writeFileSync(tokenFile, rotated);
    writeFileSync(join(dir, 'sa-token'), rotated);
    await bao.api('POST', 'auth/token/revoke', { token: first });
    h.skew(10_000);
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    assert.notEqual(h.token(), first);
    assert.equal(h.calls.filter((c) => c === 'vault:login').length, 2);

    // A path the policy denies, with a brand-new token: no login loop.
    await bao.writePolicy('read-all', `${READ_ALL_POLICY}\npath "kv1/denied/*" { capabilities = ["deny"] }`);
    await bao.api('POST', 'kv1/denied/x', { a: secret() });
    const before = h.calls.length;
    failed((await h.p.fetchMany([ref('kv1/denied/x')]))[0], 'PERMISSION_DENIED');
    assert.ok(!h.calls.slice(before).includes('vault:login'));
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    noSecretsIn(h.logs());
    await h.p.close();
  });

  void test('jwt auth with a locally generated key pair', async () => {
    const jwt = await bao.setupJwt('app', ['read-all']);
    writeFileSync(join(dir, 'jwt'), jwt.mint({}));
    const h = harness({ auth: 'jwt', authPath: 'jwt', role: 'app', tokenFile: join(dir, 'jwt') });
    assert.deepEqual(ok((await h.p.fetchMany([ref('kv2/app/db', { field: 'password' })]))[0]).value, {
      kind: 'object',
      value: { password: values.kv2b },
    });
    writeFileSync(join(dir, 'jwt-bad'), jwt.mint({ sub: 'someone-else' }));
    const bad = harness({ auth: 'jwt', authPath: 'jwt', role: 'app', tokenFile: join(dir, 'jwt-bad') });
    failed((await bad.p.fetchMany([ref('kv2/app/db')]))[0], 'AUTH_FAILED');
    const absent = harness({ auth: 'jwt', authPath: 'jwt', role: 'app', tokenFile: join(dir, 'no-such-file') });
    failed((await absent.p.fetchMany([ref('kv2/app/db')]))[0], 'AUTH_FAILED');
    await Promise.all([h.p.close(), bad.p.close(), absent.p.close()]);
  });

  void test('approle auth re-reads a rotated secret-id; a narrow policy denies other mounts', async () => {
    const files = await bao.setupAppRole('narrow', ['kv2-only'], dir);
    const h = spiedHarness({
      auth: 'approle',
      authPath: 'approle',
      roleIdFile: files.roleIdFile,
      secretIdFile: files.secretIdFile,
    });
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    failed((await h.p.fetchMany([ref('kv1/app/db')]))[0], 'PERMISSION_DENIED');
    // Rotate the secret-id: destroy the old one, write the new one; the next login must use the new file content.
    const fresh = (await bao.api('POST', 'auth/approle/role/narrow/secret-id', {})) as { data: { secret_id: string } };
    await bao.api('POST', 'auth/approle/role/narrow/secret-id/destroy', {
      secret_id: readFileSync(files.secretIdFile, 'utf8'),
    });
    writeFileSync(files.secretIdFile, fresh.data.secret_id);
    await bao.api('POST', 'auth/token/revoke', { token: h.token() });
    h.skew(10_000);
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    assert.equal(h.calls.filter((c) => c === 'vault:login').length, 2);
    await h.p.close();
  });

  void test('token auth reads the token file; a token replaced after the first tells the loop', async () => {
    const created = (await bao.api('POST', 'auth/token/create', { policies: ['read-all'], ttl: '1h' })) as {
      auth: { client_token: string };
    };
    const tokenFile = join(dir, 'vault-token');
    writeFileSync(tokenFile, created.auth.client_token);
    const h = harness({ auth: 'token', authPath: 'token', tokenFile });
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    assert.deepEqual(h.calls.slice(0, 1), ['vault:token/lookup-self']);
    // Replacing the token tells the loop (its leases die with it).
    const next = (await bao.api('POST', 'auth/token/create', { policies: ['read-all'], ttl: '1h' })) as {
      auth: { client_token: string };
    };
    writeFileSync(tokenFile, next.auth.client_token);
    await bao.api('POST', 'auth/token/revoke', { token: created.auth.client_token });
    let notified = 0;
    h.p.watch(() => (notified += 1));
    h.skew(10_000);
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    assert.equal(notified, 1);
    await h.p.close();
  });

  void test('dynamic database credentials: one credential per path, lease renewal, revoke on shutdown', async () => {
    const h = harness({ ...k8sSettings, tokenFile: join(dir, 'sa-token') });
    const [user, pass] = await h.p.fetchMany([
      ref('database/creds/readonly', { field: 'username' }),
      ref('database/creds/readonly', { field: 'password' }),
    ]);
    const fetched = ok(user);
    assert.deepEqual(ok(pass), fetched, 'two files of one dynamic secret share one credential');
    assert.equal(h.calls.filter((c) => c === 'vault:read').length, 1);
    const lease = fetched.lease;
    assert.ok(lease !== undefined && lease.renewable);
    assert.equal(lease.durationMs, 60_000);
    assert.equal(fetched.version, lease.id);
    assert.equal(fetched.displayVersion, undefined, 'nor is a lease id');
    const creds = fetched.value.value as { username: string; password: string };
    written.push(creds.password);
    assert.equal(
      await pg.query('SELECT current_user', { user: creds.username, password: creds.password }),
      creds.username,
    );

    const renewed = await h.p.renewLease(lease);
    assert.equal(renewed.id, lease.id);
    assert.ok(renewed.durationMs > 0 && renewed.renewedAt >= lease.renewedAt);
    assert.ok(h.calls.includes('vault:sys/leases/renew'));

    await h.p.revoke([lease]);
    await assert.rejects(pg.query('SELECT 1', { user: creds.username, password: creds.password }));
    // The revoked lease cannot be renewed: the loop is told to fetch a new credential.
    await assert.rejects(
      h.p.renewLease(lease),
      (e: Error & { code?: string }) => e.code === 'LEASE_EXPIRED' && !e.message.includes(lease.id),
    );
    noSecretsIn(h.logs());
    await h.p.close();
  });

  void test('token renewal at ~2/3 TTL on the injected timer; renewed while it extends, re-login before max TTL notifies watchers', async () => {
    const files = await bao.setupAppRole('short', ['read-all'], dir, { tokenTtl: '3s', tokenMaxTtl: '4s' });
    const delays: number[] = [];
    const timers: Timers = {
      setTimeout(fn, ms) {
        delays.push(ms);
        return setTimeout(fn, ms);
      },
      clearTimeout(handle) {
        clearTimeout(handle as NodeJS.Timeout);
      },
    };
    const h = harness({ auth: 'approle', authPath: 'approle', ...files }, { timers, random: () => 0.5 });
    const relogged = new Promise<void>((resolve) => h.p.watch(resolve));
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    // 2/3 of 3 s plus a third of the 15 % grace: 2.15 s.
    assert.ok(
      delays[0] !== undefined && delays[0] > 2000 && delays[0] < 2300,
      `first renewal after ${String(delays[0])} ms`,
    );
    const guard = setTimeout(() => assert.fail('no re-login within 10 s'), 10_000);
    await relogged;
    clearTimeout(guard);
    const maintenance = h.calls.filter((c) => c === 'vault:token/renew-self' || c === 'vault:login');
    // Renewed while renewing still extends the token, then a new login before the 4 s max TTL.
    assert.equal(maintenance[0], 'vault:login');
    assert.equal(maintenance.at(-1), 'vault:login');
    assert.ok(
      maintenance.length >= 3 && maintenance.slice(1, -1).every((c) => c === 'vault:token/renew-self'),
      maintenance.join(','),
    );
    ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]);
    await h.p.close();
  });

  void test('namespaces: X-Vault-Namespace on every call, auth and secrets inside the namespace', async () => {
    await bao.api('POST', 'sys/namespaces/team-a', {});
    await bao.enableKv('kv2', 2, { namespace: 'team-a' });
    const inNamespace = secret();
    await bao.api('POST', 'kv2/data/app/db', { data: { password: inNamespace } }, { namespace: 'team-a' });
    await bao.writePolicy('read-all', READ_ALL_POLICY, { namespace: 'team-a' });
    const nsDir = mkdtempSync(join(dir, 'ns-'));
    const files = await bao.setupAppRole('app', ['read-all'], nsDir, { namespace: 'team-a' });
    const h = harness({
      auth: 'approle',
      authPath: 'approle',
      namespace: 'team-a',
      roleIdFile: files.roleIdFile,
      secretIdFile: files.secretIdFile,
    });
    assert.deepEqual(ok((await h.p.fetchMany([ref('kv2/app/db')]))[0]).value, {
      kind: 'object',
      value: { password: inNamespace },
    });
    await h.p.close();
  });
});

void describe('vault provider over HTTPS with a private CA', () => {
  void test('caFile is trusted, an unknown CA is TLS_VERIFY_FAILED, a stopped server is UNAVAILABLE', async () => {
    const tls = await startOpenBao({ tls: true });
    try {
      const value = secret();
      await tls.api('POST', 'secret/data/app', { data: { token: value } });
      const tokenFile = join(dir, 'tls-root-token');
      writeFileSync(tokenFile, tls.rootToken);
      const settings = { addr: tls.addr, auth: 'token', authPath: 'token', tokenFile } as const;
      const trusted = testDeps({ vault: { ...settings, caFile: tls.caFile ?? '' } });
      const p = createVaultProvider(trusted.deps);
      assert.deepEqual(ok((await p.fetchMany([ref('secret/app')]))[0]).value, {
        kind: 'object',
        value: { token: value },
      });

      const untrusted = createVaultProvider(testDeps({ vault: settings }).deps);
      failed((await untrusted.fetchMany([ref('secret/app')]))[0], 'TLS_VERIFY_FAILED');

      await tls.stop();
      const outcomes = await p.fetchMany([ref('secret/app'), ref('secret/other')]);
      for (const outcome of outcomes) failed(outcome, 'UNAVAILABLE');
      noSecretsIn(trusted.logs());
      await Promise.all([p.close(), untrusted.close()]);
    } finally {
      await tls.stop();
    }
  });
});
