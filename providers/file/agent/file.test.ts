import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testDeps } from '../../../test/support/provider-deps.ts';
import type { FetchOutcome } from '../../../agent/provider.ts';
import { createFileProvider, FILE_STORE_ENV } from './file.ts';

let store = '';
before(async () => {
  store = await mkdtemp(path.join(tmpdir(), 'sidekey-store-'));
  await mkdir(path.join(store, 'payments'));
  await writeFile(path.join(store, 'payments/db.yaml'), 'username: app\npassword: s3cret-yaml\n');
  await writeFile(path.join(store, 'payments/api.json'), '{"token":"s3cret-json"}');
  await writeFile(path.join(store, 'text.yml'), '"just text"\n');
  await writeFile(path.join(store, 'cert.yaml'), '!!binary AAEC/w==\n');
  await writeFile(path.join(store, 'broken.yaml'), 'password: [s3cret-broken\n');
  await writeFile(path.join(store, 'list.yaml'), '- a\n');
});
after(() => rm(store, { recursive: true, force: true }));

function provider() {
  const t = testDeps({}, { [FILE_STORE_ENV]: store });
  return { ...t, provider: createFileProvider(t.deps) };
}

const value = (o: FetchOutcome | undefined): unknown => (o?.ok === true ? o.fetched.value : o?.error.code);

void describe('file provider', () => {
  void it('reads YAML, JSON, text and binary documents, one read each', async () => {
    const { provider: p, calls } = provider();
    const got = await p.fetchMany([
      { provider: 'file', path: 'payments/db' },
      { provider: 'file', path: 'payments/api' },
      { provider: 'file', path: 'text' },
      { provider: 'file', path: 'cert' },
    ]);
    assert.deepEqual(value(got[0]), { kind: 'object', value: { username: 'app', password: 's3cret-yaml' } });
    assert.deepEqual(value(got[1]), { kind: 'object', value: { token: 's3cret-json' } });
    assert.deepEqual(value(got[2]), { kind: 'text', value: 'just text' });
    const cert = got[3];
    assert.ok(cert?.ok === true && cert.fetched.value.kind === 'binary');
    assert.deepEqual([...cert.fetched.value.value], [0, 1, 2, 255]);
    assert.match(got[0]?.ok === true ? got[0].fetched.version : '', /^[0-9a-f]{16}$/);
    assert.ok(calls.every((c) => c === 'file:read'));
    await p.close();
  });

  void it('maps failures to stable codes without quoting the document', async () => {
    const { provider: p, logs } = provider();
    const got = await p.fetchMany([
      { provider: 'file', path: 'missing' },
      { provider: 'file', path: 'broken' },
      { provider: 'file', path: 'list' },
      { provider: 'file', path: '../etc/passwd' },
    ]);
    assert.deepEqual(got.map(value), ['NOT_FOUND', 'BAD_RESPONSE', 'BAD_RESPONSE', 'CONFIG']);
    for (const o of got) assert.ok(o.ok || !o.error.message.includes('s3cret'), o.ok ? '' : o.error.message);
    assert.ok(!logs().includes('s3cret'));
    await p.close();
  });

  void it('needs SIDEKEY_FILE_STORE', () => {
    assert.throws(() => createFileProvider(testDeps({}).deps), { code: 'CONFIG' });
  });

  void it('reports a change in the store within a second', async () => {
    const { provider: p } = provider();
    let changes = 0;
    const unsubscribe = p.watch?.(() => (changes += 1));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    await writeFile(path.join(store, 'payments/db.yaml'), 'username: app\npassword: rotated\n');
    while (changes === 0 && Date.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(changes > 0 && Date.now() - started < 1000, `changes ${changes} after ${Date.now() - started} ms`);
    unsubscribe?.();
    await p.close();
  });
});
