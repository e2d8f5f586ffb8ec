// AWS provider against a real moto server (Secrets Manager + STS). Faults moto cannot produce (throttling,
// dropped connections, a denied batch call) come from a loopback proxy in front of it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { SecretReference } from '../../../injector/reference.ts';
import type { FetchOutcome, Fetched } from '../../../agent/provider.ts';
import { startFaultProxy } from '../../../test/support/fault-proxy.ts';
import type { FaultProxy } from '../../../test/support/fault-proxy.ts';
import { irsaEnv, MOTO_ACCOUNT, startMoto } from '../../../devkit/backends/moto.ts';
import type { MotoHandle } from '../../../devkit/backends/moto.ts';
import { freePort } from '../../../devkit/process.ts';
import { testDeps } from '../../../test/support/provider-deps.ts';
import { BATCH_RETRY_MS, createAwsProvider, isVersionId, MAX_ANSWER_BYTES } from './aws.ts';

const secretValues: string[] = [];
function secretText(): string {
  const value = `s3cr3t-${randomBytes(12).toString('hex')}`;
  secretValues.push(value);
  return value;
}

let moto: MotoHandle;
let proxy: FaultProxy;
const savedEnv = { ...process.env };

before(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy(moto.endpoint);
  // The SDK's default credential chain reads the process environment.
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: moto.region,
  });
  delete process.env.AWS_PROFILE;
});

after(async () => {
  process.env = savedEnv;
  await proxy.stop();
  await moto.stop();
});

async function create(
  name: string,
  value: { SecretString?: string; SecretBinary?: Uint8Array },
): Promise<{ arn: string; versionId: string }> {
  const out = await moto.admin.send(new CreateSecretCommand({ Name: name, ...value }));
  return { arn: out.ARN ?? '', versionId: out.VersionId ?? '' };
}

function provider(endpoint = proxy.url): ReturnType<typeof testDeps> & { p: ReturnType<typeof createAwsProvider> } {
  const t = testDeps({ aws: { region: 'us-east-1' } }, { AWS_ENDPOINT_URL: endpoint });
  // The logger bound to the provider's name, as the agent hands it in.
  return { ...t, p: createAwsProvider({ ...t.deps, log: t.deps.log.child({ provider: 'aws' }) }) };
}

function ok(outcome: FetchOutcome | undefined): Fetched {
  assert.ok(outcome?.ok === true, `expected success, got ${outcome?.ok === false ? outcome.error.code : 'nothing'}`);
  return outcome.fetched;
}

const ref = (path: string, extra: Partial<SecretReference> = {}): SecretReference => ({
  provider: 'aws',
  path,
  ...extra,
});

void describe('aws provider (moto)', () => {
  void test('45 secrets take ceil(45/20) = 3 BatchGetSecretValue calls, values and kinds intact', async () => {
    const values = new Map<string, string>();
    for (let i = 0; i < 45; i++) {
      const value = secretText();
      values.set(`batch/s${i}`, value);
      await create(`batch/s${i}`, { SecretString: i % 2 === 0 ? JSON.stringify({ password: value }) : value });
    }
    const { p, calls, logs } = provider();
    proxy.resetOperations();
    // Two files reading two fields of one secret cost one slot in the batch.
    const refs = [...values.keys()].map((path) => ref(path)).concat(ref('batch/s0', { field: 'password' }));
    const outcomes = await p.fetchMany(refs);
    assert.equal(outcomes.length, 46);
    for (const [i, path] of [...values.keys()].entries()) {
      const fetched = ok(outcomes[i]);
      assert.ok(isVersionId(fetched.version));
      if (i % 2 === 0) assert.deepEqual(fetched.value, { kind: 'object', value: { password: values.get(path) } });
      else assert.deepEqual(fetched.value, { kind: 'text', value: values.get(path) });
    }
    assert.deepEqual(ok(outcomes[45]).value, ok(outcomes[0]).value);
    assert.deepEqual(calls, ['aws:BatchGetSecretValue', 'aws:BatchGetSecretValue', 'aws:BatchGetSecretValue']);
    assert.deepEqual(proxy.operations(), ['BatchGetSecretValue', 'BatchGetSecretValue', 'BatchGetSecretValue']);
    assert.ok(secretValues.every((v) => !logs().includes(v)));
    await p.close();
  });

  void test('binary secrets, ARN references, VersionId change detection, AWSPREVIOUS and VersionId pins', async () => {
    const bytes = randomBytes(64);
    await create('bin/key', { SecretBinary: bytes });
    const first = secretText();
    const created = await create('rot/db', { SecretString: first });
    const { p, calls } = provider();
    const [bin, byArn] = await p.fetchMany([ref('bin/key'), ref(created.arn)]);
    assert.deepEqual(ok(bin).value, { kind: 'binary', value: new Uint8Array(bytes) });
    assert.equal(ok(byArn).version, created.versionId);
    assert.equal(ok(byArn).displayVersion, created.versionId, 'a VersionId reveals nothing: /status shows it');
    assert.ok(created.arn.startsWith(`arn:aws:secretsmanager:us-east-1:${MOTO_ACCOUNT}:secret:rot/db-`));

    const second = secretText();
    const put = await moto.admin.send(new PutSecretValueCommand({ SecretId: 'rot/db', SecretString: second }));
    calls.length = 0;
    const [current, previous, pinned, partialArn] = await p.fetchMany([
      ref('rot/db'),
      ref('rot/db', { version: 'AWSPREVIOUS' }),
      ref('rot/db', { version: created.versionId }),
      ref(created.arn.slice(0, -7)),
    ]);
    assert.deepEqual(ok(current).value, { kind: 'text', value: second });
    assert.equal(ok(current).version, put.VersionId);
    assert.notEqual(ok(current).version, created.versionId);
    assert.deepEqual(ok(previous).value, { kind: 'text', value: first });
    assert.deepEqual(ok(pinned).value, { kind: 'text', value: first });
    assert.equal(ok(partialArn).version, put.VersionId);
    assert.deepEqual(calls.sort(), ['aws:BatchGetSecretValue', 'aws:GetSecretValue', 'aws:GetSecretValue']);
    await p.close();
  });

  void test('a missing secret fails alone with NOT_FOUND; the rest of the batch succeeds', async () => {
    await create('mixed/present', { SecretString: secretText() });
    const { p } = provider();
    const [present, missing, missingVersion] = await p.fetchMany([
      ref('mixed/present'),
      ref('mixed/absent'),
      ref('mixed/present', { version: 'NOSUCHSTAGE' }),
    ]);
    ok(present);
    assert.ok(missing?.ok === false);
    assert.equal(missing.error.code, 'NOT_FOUND');
    assert.ok(missingVersion?.ok === false);
    assert.equal(missingVersion.error.code, 'NOT_FOUND');
    await p.close();
  });

  void test('a denied BatchGetSecretValue falls back to GetSecretValue, and the batch is tried again later', async () => {
    await create('fallback/a', { SecretString: secretText() });
    await create('fallback/b', { SecretString: secretText() });
    const t = testDeps({ aws: { region: 'us-east-1' } }, { AWS_ENDPOINT_URL: proxy.url });
    let clock = 1_000_000;
    const p = createAwsProvider({ ...t.deps, log: t.deps.log.child({ provider: 'aws' }), now: () => clock });
    const { calls, logs } = t;
    proxy.setFault(
      {
        kind: 'status',
        status: 400,
        body: {
          __type: 'AccessDeniedException',
          message: 'not authorized to perform: secretsmanager:BatchGetSecretValue',
        },
      },
      1,
    );
    const first = await p.fetchMany([ref('fallback/a'), ref('fallback/b')]);
    first.forEach((o) => ok(o));
    assert.deepEqual(calls, ['aws:BatchGetSecretValue', 'aws:GetSecretValue', 'aws:GetSecretValue']);
    assert.match(logs(), /BatchGetSecretValue unavailable/);
    assert.doesNotMatch(logs(), /"provider":.*"provider":/, 'a log line repeats the provider key');
    calls.length = 0;
    clock += BATCH_RETRY_MS - 1;
    (await p.fetchMany([ref('fallback/a'), ref('fallback/b')])).forEach((o) => ok(o));
    assert.deepEqual(
      calls,
      ['aws:GetSecretValue', 'aws:GetSecretValue'],
      'no batch call until BATCH_RETRY_MS has passed',
    );
    calls.length = 0;
    clock += 1;
    (await p.fetchMany([ref('fallback/a'), ref('fallback/b')])).forEach((o) => ok(o));
    assert.deepEqual(calls, ['aws:BatchGetSecretValue'], 'the denial was transient: batching is back');
    assert.match(logs(), /batching resumed/);
    await p.close();
  });

  void test('a black-holed endpoint: each attempt times out, the call fails UNAVAILABLE and leaves no socket open', async () => {
    const open = new Set<Socket>();
    let accepted = 0;
    const hole = createNetServer((socket) => {
      accepted += 1;
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => undefined);
      socket.resume(); // reads (and drops) the request, so the client's close is seen
    }).listen(0, '127.0.0.1');
    await once(hole, 'listening');
    const t = testDeps(
      { aws: { region: 'us-east-1' } },
      { AWS_ENDPOINT_URL: `http://127.0.0.1:${(hole.address() as AddressInfo).port}` },
    );
    const p = createAwsProvider(t.deps, { requestTimeoutMs: 300 });
    try {
      const answered = p.fetchMany([ref('hole/a')]);
      const guard = new Promise<'hung'>((resolve) =>
        setTimeout(() => {
          resolve('hung');
        }, 15_000).unref(),
      );
      const outcome = await Promise.race([answered, guard]);
      assert.notEqual(
        outcome,
        'hung',
        "the call must fail by its own deadline, not hang until the refresh loop's backstop",
      );
      const [first] = outcome as Awaited<typeof answered>;
      assert.ok(first?.ok === false);
      assert.equal(first.error.code, 'UNAVAILABLE');
      assert.equal(accepted, 3, 'three attempts');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(open.size, 0, 'every timed-out attempt closed its socket');
    } finally {
      await p.close();
      hole.close();
    }
  });

  void test('an answer larger than 4 MiB is refused as BAD_RESPONSE, with or without a content-length', async () => {
    const huge = JSON.stringify({
      SecretValues: [{ Name: 'big/a', SecretString: 'x'.repeat(MAX_ANSWER_BYTES + 1), VersionId: 'v1' }],
      Errors: [],
    });
    for (const declared of [true, false]) {
      const server = createServer((req, res) => {
        req.resume();
        res.writeHead(200, {
          'content-type': 'application/x-amz-json-1.1',
          ...(declared ? { 'content-length': String(Buffer.byteLength(huge)) } : {}),
        });
        res.end(huge);
      }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const t = testDeps(
        { aws: { region: 'us-east-1' } },
        { AWS_ENDPOINT_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` },
      );
      const p = createAwsProvider(t.deps);
      try {
        const [outcome] = await p.fetchMany([ref('big/a')]);
        assert.ok(outcome?.ok === false, `declared ${String(declared)}: refused`);
        assert.equal(outcome.error.code, 'BAD_RESPONSE');
        assert.match(outcome.error.message, /exceeds 4194304 bytes/);
      } finally {
        await p.close();
        server.close();
      }
    }
  });

  void test('throttling is THROTTLED after a bounded number of attempts', async () => {
    await create('throttle/a', { SecretString: secretText() });
    const { p, calls } = provider();
    proxy.setFault({ kind: 'aws-throttle' });
    try {
      const [outcome] = await p.fetchMany([ref('throttle/a')]);
      assert.ok(outcome?.ok === false);
      assert.equal(outcome.error.code, 'THROTTLED');
      assert.equal(calls.length, 3, 'standard retry mode, 3 attempts, each counted');
    } finally {
      proxy.setFault({ kind: 'pass' });
    }
    // The next refresh after the throttling ends succeeds.
    ok((await p.fetchMany([ref('throttle/a')]))[0]);
    await p.close();
  });

  void test('dropped connections and a stopped server are UNAVAILABLE', async () => {
    const { p } = provider();
    proxy.setFault({ kind: 'close' });
    try {
      const [dropped] = await p.fetchMany([ref('batch/s1')]);
      assert.ok(dropped?.ok === false);
      assert.equal(dropped.error.code, 'UNAVAILABLE');
    } finally {
      proxy.setFault({ kind: 'pass' });
    }
    await p.close();
    const down = provider(`http://127.0.0.1:${await freePort()}`);
    const [refused] = await down.p.fetchMany([ref('batch/s1'), ref('batch/s1', { version: 'AWSCURRENT' })]);
    assert.ok(refused?.ok === false);
    assert.equal(refused.error.code, 'UNAVAILABLE');
    await down.p.close();
  });

  void test('IRSA: web identity token file + role ARN, credentials from STS AssumeRoleWithWebIdentity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidekey-irsa-'));
    const value = secretText();
    await create('irsa/db', { SecretString: value });
    writeFileSync(join(dir, 'token'), 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwOmFwcCJ9.c2ln');
    const saved = { ...process.env };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    Object.assign(process.env, { ...irsaEnv(join(dir, 'token'), 'sidekey-test'), AWS_ENDPOINT_URL: proxy.url });
    try {
      proxy.resetOperations();
      const irsa = provider();
      const [outcome] = await irsa.p.fetchMany([ref('irsa/db')]);
      assert.deepEqual(ok(outcome).value, { kind: 'text', value });
      assert.deepEqual(proxy.operations(), ['AssumeRoleWithWebIdentity', 'BatchGetSecretValue']);
      await irsa.p.close();
    } finally {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
  void test('EKS Pod Identity: container credentials endpoint with the authorization token file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidekey-podid-'));
    const value = secretText();
    await create('podid/db', { SecretString: value });
    writeFileSync(join(dir, 'token'), 'pod-identity-token');
    // The EKS Pod Identity Agent's answer; the SDK accepts a loopback URI for AWS_CONTAINER_CREDENTIALS_FULL_URI.
    const seen: (string | undefined)[] = [];
    const agent = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          AccessKeyId: 'ASIAPODIDENTITY',
          SecretAccessKey: 'testing',
          Token: 'session',
          Expiration: new Date(Date.now() + 3_600_000).toISOString(),
        }),
      );
    });
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    const saved = { ...process.env };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    Object.assign(process.env, {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(agent.address() as AddressInfo).port}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: join(dir, 'token'),
    });
    try {
      const podId = provider();
      assert.deepEqual(ok((await podId.p.fetchMany([ref('podid/db')]))[0]).value, { kind: 'text', value });
      assert.deepEqual(seen, ['pod-identity-token']);
      await podId.p.close();
    } finally {
      process.env = saved;
      agent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void test('isVersionId tells VersionIds from staging labels', () => {
  assert.equal(isVersionId('AWSPREVIOUS'), false);
  assert.equal(isVersionId('AWSCURRENT'), false);
  assert.equal(isVersionId('blue'), false);
  assert.equal(isVersionId('3f1c1c1e-8f5a-4a4e-9d3c-8a6f3b2c1d0e'), true);
  assert.equal(isVersionId('a'.repeat(32)), true);
});
