// The /status document from the loop's state: states, the bound on its size, and the schema both sides use.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_FILES, type AgentConfig } from '../injector/agent-config.ts';
import { buildSources } from './sources.ts';
import { agentStatus, statusBody, type StatusInput } from './status.ts';
import { MAX_STATUS_BYTES, parseAgentStatus, type FileStatus } from './status-schema.ts';

const T0 = Date.parse('2026-01-02T03:04:05.000Z');
const SECRET = 'hunter2-value-never-shown';

function config(over: Partial<AgentConfig> = {}): AgentConfig {
  return {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir: '/sidekey/secrets',
    port: 8099,
    fileMode: 0o400,
    files: [
      { name: 'password', ref: { provider: 'vault', path: 'secret/app/db', field: 'password' }, refreshMs: 60_000 },
      { name: 'creds', ref: { provider: 'vault', path: 'database/creds/ro' } },
      { name: 'api', ref: { provider: 'aws', path: 'prod/api', field: 'key', version: 'AWSPREVIOUS' } },
    ],
    reload: { kind: 'signal', signal: 'SIGHUP', container: 'app' },
    ...over,
  };
}

/** The three sources after a first round: KV fresh, a leased credential fresh, the AWS secret failing. */
function input(now: number): StatusInput {
  const cfg = config();
  const [kv, leased, aws] = buildSources(cfg, T0);
  assert.ok(kv !== undefined && leased !== undefined && aws !== undefined);
  const written = new TextEncoder().encode(SECRET);
  Object.assign(kv, { version: 'sha256:abcdef', displayVersion: '7', fetchedAt: T0, dueAt: T0 + 60_000 });
  Object.assign(leased, {
    version: 'database/creds/ro/Xy12',
    fetchedAt: T0,
    lease: { id: 'database/creds/ro/Xy12', durationMs: 3_600_000, renewable: true, renewedAt: T0, issuedAt: T0 },
    next: 'renew',
    dueAt: T0 + 2_400_000,
  });
  Object.assign(aws, {
    failures: 3,
    lastError: `NOT_FOUND (aws prod/api: ${SECRET})`,
    lastErrorCode: 'NOT_FOUND',
    lastErrorAt: T0 + 1000,
    dueAt: T0 + 9000,
  });
  for (const source of [kv, leased]) for (const f of source.files) Object.assign(f, { written, goodAt: T0 });
  return {
    config: cfg,
    sources: [kv, leased, aws],
    writeError: undefined,
    reloads: { ok: 2, failed: 1, last: { at: T0 + 500, result: 'failed' } },
    startedAt: T0 - 1000,
    now,
  };
}

void describe('agent status', () => {
  void it('reports each file with its reference, times and error code, and the worst state for the pod', () => {
    const status = agentStatus(input(T0 + 2000));
    assert.equal(status.state, 'failing');
    assert.deepEqual(status.counts, { fresh: 2, stale: 0, failing: 1 });
    assert.deepEqual(
      status.files.map((f) => [f.name, f.reference, f.state]),
      [
        ['api', 'aws:prod/api#key@AWSPREVIOUS', 'failing'],
        ['password', 'vault:secret/app/db#password', 'fresh'],
        ['creds', 'vault:database/creds/ro', 'fresh'],
      ],
      'failing files first',
    );
    const file = (name: string): FileStatus => {
      const found = status.files.find((f) => f.name === name);
      assert.ok(found !== undefined, name);
      return found;
    };
    const [api, password, creds] = [file('api'), file('password'), file('creds')];
    assert.deepEqual(api.lastError, { code: 'NOT_FOUND', at: '2026-01-02T03:04:06.000Z', failures: 3 });
    assert.equal(api.stale, true, 'never written');
    assert.equal(password.version, '7');
    assert.equal(password.nextRefreshAt, '2026-01-02T03:05:05.000Z');
    assert.equal(password.staleAfterMs, 180_000, 'three refresh intervals');
    assert.deepEqual(creds.lease, { expiresAt: '2026-01-02T04:04:05.000Z', renewable: true });
    assert.equal(creds.next, 'renew');
    assert.equal(creds.version, undefined, 'a lease id is not shown as a version');
    assert.deepEqual(status.reloads, {
      kind: 'signal',
      ok: 2,
      failed: 1,
      last: { at: '2026-01-02T03:04:05.500Z', result: 'failed' },
    });
    const body = statusBody(status);
    for (const hidden of [SECRET, 'Xy12', 'sha256:abcdef'])
      assert.ok(!body.includes(hidden), `${hidden} is not in the body`);
  });

  void it('is stale once the data outlives its threshold, and fresh again when nothing fails', () => {
    const late = input(T0 + 181_000);
    const aws = late.sources[2];
    assert.ok(aws !== undefined);
    delete aws.lastErrorCode;
    const status = agentStatus(late);
    assert.equal(status.state, 'stale');
    assert.deepEqual(
      status.files.map((f) => [f.name, f.state]),
      [
        ['password', 'stale'],
        ['api', 'stale'],
        ['creds', 'fresh'],
      ],
    );
  });

  void it('a failed write makes every file failing, with its code', () => {
    const status = agentStatus({ ...input(T0 + 2000), writeError: { code: 'TOO_LARGE', at: T0 + 1500, failures: 2 } });
    assert.deepEqual(status.counts, { fresh: 0, stale: 0, failing: 3 });
    assert.deepEqual(status.writeError, { code: 'TOO_LARGE', at: '2026-01-02T03:04:06.500Z', failures: 2 });
  });

  void it('round-trips through the schema the CLI reads it with', () => {
    const status = agentStatus(input(T0 + 2000));
    const parsed = parseAgentStatus(statusBody(status));
    assert.deepEqual(parsed, { ok: true, value: status });
  });

  void it('the schema refuses another version, a value-like field and a message in place of a code', () => {
    const status = agentStatus(input(T0 + 2000));
    assert.deepEqual(parseAgentStatus(JSON.stringify({ ...status, version: 2 })), {
      ok: false,
      error: 'status version 2, this CLI reads 1',
    });
    const [first, ...rest] = status.files;
    assert.ok(first !== undefined);
    const withValue = { ...status, files: [{ ...first, value: SECRET }, ...rest] };
    const refused = parseAgentStatus(JSON.stringify(withValue));
    assert.deepEqual(refused, { ok: false, error: 'the status does not match its schema at files.0' });
    const message = { ...first, lastError: { code: `NOT_FOUND ${SECRET}`, at: first.nextRefreshAt, failures: 1 } };
    assert.equal(parseAgentStatus(JSON.stringify({ ...status, files: [message] })).ok, false);
    assert.deepEqual(parseAgentStatus('not json'), { ok: false, error: 'the status is not JSON' });
  });

  void it("shows a certificate's parameters, serial number and expiry, never its key", () => {
    const ref = { provider: 'vault' as const, path: 'pki/issue/web', query: 'common_name=web.app.svc&ttl=24h' };
    const cfg = config({ files: [{ name: 'tls.key', ref: { ...ref, field: 'private_key' } }] });
    const [cert] = buildSources(cfg, T0);
    assert.ok(cert !== undefined);
    const serial = '3a:5f:00:12';
    Object.assign(cert, { version: serial, displayVersion: serial, fetchedAt: T0, expiresAt: T0 + 86_400_000 });
    for (const f of cert.files) Object.assign(f, { written: new TextEncoder().encode(SECRET), goodAt: T0 });
    const [file] = agentStatus({ ...input(T0 + 1000), config: cfg, sources: [cert] }).files;
    assert.deepEqual(
      [file?.reference, file?.version, file?.certificate, file?.state],
      [
        'vault:pki/issue/web?common_name=web.app.svc&ttl=24h#private_key',
        serial,
        { expiresAt: '2026-01-03T03:04:05.000Z' },
        'fresh',
      ],
    );
    assert.equal(file?.staleAfterMs, 86_400_000, 'a certificate is fresh until it expires');
    assert.ok(!JSON.stringify(file).includes(SECRET));
  });

  void it(`stays within ${MAX_STATUS_BYTES} bytes for ${MAX_FILES} files of the longest references, leaving out fresh entries`, () => {
    const files = Array.from({ length: MAX_FILES }, (_, i) => ({
      name: `f${String(i).padStart(3, '0')}${'n'.repeat(240)}`,
      ref: {
        provider: 'vault' as const,
        path: `p${i}/${'x'.repeat(500)}`,
        query: `common_name=${'q'.repeat(2030)}`,
        field: 'y'.repeat(128),
      },
    }));
    const cfg = config({ files });
    const sources = buildSources(cfg, T0);
    const failing = sources[MAX_FILES - 1];
    assert.ok(failing !== undefined);
    Object.assign(failing, { lastErrorCode: 'PERMISSION_DENIED', lastErrorAt: T0 });
    const status = agentStatus({ ...input(T0), config: cfg, sources });
    assert.ok(Buffer.byteLength(JSON.stringify(status)) > MAX_STATUS_BYTES, 'the whole document is larger');
    const body = statusBody(status);
    assert.ok(Buffer.byteLength(body) <= MAX_STATUS_BYTES, `${Buffer.byteLength(body)} bytes`);
    const parsed = parseAgentStatus(body);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    assert.equal(parsed.value.files.length + parsed.value.omittedFiles, MAX_FILES);
    assert.ok(parsed.value.omittedFiles > 0);
    assert.equal(parsed.value.files[0]?.state, 'failing', 'the failing file is kept');
    assert.deepEqual(parsed.value.counts, { fresh: 0, stale: MAX_FILES - 1, failing: 1 }, 'counts cover every file');
  });
});
