import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DATA_DIR, cleanPayloadPath, writeAtomic, WriterError } from './atomic-writer.ts';

const NODE = process.execPath;
const enc = (s: string): Uint8Array => Buffer.from(s);
const payloadOf = (o: Record<string, string>): Map<string, Uint8Array> =>
  new Map(Object.entries(o).map(([k, v]) => [k, enc(v)]));

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(tmpdir(), 'sidekey-writer-'));
}

/** Rebuilds the payload through the user-visible names (like checkVolumeContents) and checks the layout invariants. */
async function visible(target: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const entries = await fs.readdir(target);
  const data = await fs.readlink(path.join(target, DATA_DIR));
  for (const name of entries) {
    if (name.startsWith('..')) {
      assert.ok(name === DATA_DIR || name === data, `unexpected left-over ${name}`);
      continue;
    }
    assert.equal(await fs.readlink(path.join(target, name)), `${DATA_DIR}/${name}`);
    const stat = await fs.stat(path.join(target, name));
    if (stat.isDirectory()) {
      for (const sub of await fs.readdir(path.join(target, name), { recursive: true })) {
        const p = path.join(target, name, sub);
        if ((await fs.stat(p)).isFile()) out[`${name}/${sub}`] = await fs.readFile(p, 'utf8');
      }
    } else {
      out[name] = await fs.readFile(path.join(target, name), 'utf8');
    }
  }
  return out;
}

void describe('cleanPayloadPath', () => {
  const good: [string, string][] = [
    ['a', 'a'],
    ['foo//bar', 'foo/bar'],
    ['./x/./y', 'x/y'],
    ['.dotfile', '.dotfile'],
  ];
  for (const [raw, want] of good) {
    void it(`accepts ${raw}`, () => {
      assert.equal(cleanPayloadPath(raw), want);
    });
  }
  const bad = ['', '/abs', 'a/../b', '..', '..data', '..x/y', 'x'.repeat(256), `${'a/'.repeat(2049)}a`];
  for (const raw of bad) {
    void it(`rejects ${raw.slice(0, 20)}`, () => {
      assert.throws(
        () => cleanPayloadPath(raw),
        (e: unknown) => e instanceof WriterError && e.code === 'BAD_PATH',
      );
    });
  }
});

void describe('writeAtomic', () => {
  void it('writes once: links after ..data, explicit modes despite the umask, binary and nested data', async () => {
    const target = await tempDir();
    const oldMask = process.umask(0o077);
    try {
      const payload = payloadOf({ password: 'p1', '.hidden': 'h', 'conf/app.yaml': 'a: 1' });
      payload.set('bin', new Uint8Array([0, 255, 10]));
      const result = await writeAtomic(target, payload, { mode: 0o444, now: () => Date.UTC(2025, 0, 31, 12) });
      assert.equal(result.written, true);
      assert.equal(result.replaced, false);
      assert.match(result.dataDir, /^\.\.2025_01_31_12_00_00\./);
      const files = await visible(target);
      assert.deepEqual(Object.keys(files).sort(), ['.hidden', 'bin', 'conf/app.yaml', 'password']);
      assert.deepEqual([...(await fs.readFile(path.join(target, 'bin')))], [0, 255, 10]);
      assert.equal((await fs.stat(path.join(target, 'password'))).mode & 0o777, 0o444);
      assert.equal((await fs.stat(path.join(target, result.dataDir))).mode & 0o777, 0o755);
      assert.equal((await fs.stat(path.join(target, 'conf'))).mode & 0o777, 0o755);
    } finally {
      process.umask(oldMask);
      await fs.rm(target, { recursive: true, force: true });
    }
  });

  void it('updates: adds, changes, removes stale names and the old directory', async () => {
    const target = await tempDir();
    const first = await writeAtomic(target, payloadOf({ a: '1', b: '1', 'd/x': '1' }), { mode: 0o400 });
    const second = await writeAtomic(target, payloadOf({ a: '2', c: '2' }), { mode: 0o400 });
    assert.equal(second.written, true);
    assert.equal(second.replaced, true, 'a set on the volume before this write was swapped out');
    assert.notEqual(second.dataDir, first.dataDir);
    assert.deepEqual(await visible(target), { a: '2', c: '2' });
    await assert.rejects(fs.lstat(path.join(target, first.dataDir)), { code: 'ENOENT' });
    const third = await writeAtomic(target, new Map(), { mode: 0o400 });
    assert.deepEqual(await visible(target), {});
    assert.equal(third.written, true);
    await fs.rm(target, { recursive: true, force: true });
  });

  void it('skips an identical payload but re-creates missing links (kubernetes #121472)', async () => {
    const target = await tempDir();
    const first = await writeAtomic(target, payloadOf({ a: '1', b: '1' }), { mode: 0o400 });
    await fs.unlink(path.join(target, 'b'));
    const again = await writeAtomic(target, payloadOf({ a: '1', b: '1' }), { mode: 0o400 });
    assert.deepEqual(again, { written: false, replaced: false, dataDir: first.dataDir });
    assert.deepEqual(await visible(target), { a: '1', b: '1' });
    const modeOnly = await writeAtomic(target, payloadOf({ a: '1', b: '1' }), { mode: 0o440 });
    assert.equal(modeOnly.written, true);
    assert.equal((await fs.stat(path.join(target, 'a'))).mode & 0o777, 0o440);
    await fs.rm(target, { recursive: true, force: true });
  });

  void it('gives files the configured group', async () => {
    const target = await tempDir();
    await writeAtomic(target, payloadOf({ a: '1' }), { mode: 0o440, gid: 4321 });
    const stat = await fs.stat(path.join(target, 'a'));
    assert.equal(stat.gid, 4321);
    assert.equal(stat.mode & 0o777, 0o440);
    await fs.rm(target, { recursive: true, force: true });
  });
});

void describe('writeAtomic on a full tmpfs', () => {
  let target = '';
  before(async () => {
    target = await tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', target]);
  });
  after(async () => {
    execFileSync('umount', [target]);
    await fs.rm(target, { recursive: true, force: true });
  });

  void it('fails with ENOSPC and leaves the last good data whole', async () => {
    await writeAtomic(target, payloadOf({ a: 'good-a', b: 'good-b' }), { mode: 0o400 });
    const huge = payloadOf({ a: 'x'.repeat(40_000), b: 'y'.repeat(40_000) });
    await assert.rejects(
      writeAtomic(target, huge, { mode: 0o400 }),
      (e: unknown) => e instanceof WriterError && e.errno === 'ENOSPC',
    );
    assert.deepEqual(await visible(target), { a: 'good-a', b: 'good-b' });
    const next = await writeAtomic(target, payloadOf({ a: 'new-a', b: 'new-b' }), { mode: 0o400 });
    assert.equal(next.written, true);
    assert.deepEqual(await visible(target), { a: 'new-a', b: 'new-b' });
  });
});

void describe('writeAtomic on a tmpfs of 256 KiB: left-overs and sets too large to rotate', () => {
  let target = '';
  before(async () => {
    target = await tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', target]);
  });
  after(async () => {
    execFileSync('umount', [target]);
    await fs.rm(target, { recursive: true, force: true });
  });
  /** Two files of totalKib KiB together. */
  const set = (fill: string, totalKib: number): Record<string, string> => ({
    a: fill.repeat(totalKib * 512),
    b: fill.repeat(totalKib * 512),
  });

  void it('a set left behind by a kill before the swap is removed before the next write (a third of the tmpfs each)', async () => {
    await writeAtomic(target, payloadOf(set('o', 90)), { mode: 0o400 });
    const killed = spawnSync(NODE, [
      path.join(import.meta.dirname, 'testdata/kill-writer.ts'),
      target,
      'rename',
      '1',
      JSON.stringify(set('k', 90)),
    ]);
    assert.equal(killed.signal, 'SIGKILL', killed.stderr.toString());
    assert.equal(
      (await fs.readdir(target)).filter((n) => /^\.\.\d{4}_/.test(n)).length,
      2,
      'the killed writer left its whole set behind',
    );
    for (const fill of ['n', 'm']) {
      await writeAtomic(target, payloadOf(set(fill, 90)), { mode: 0o400 });
      assert.deepEqual(await visible(target), set(fill, 90));
    }
    for (const name of await fs.readdir(target)) await fs.rm(path.join(target, name), { recursive: true, force: true });
  });

  void it('a set larger than half the tmpfs is written once, then TOO_LARGE names the size it needs', async () => {
    await writeAtomic(target, payloadOf(set('1', 150)), { mode: 0o400 });
    await assert.rejects(writeAtomic(target, payloadOf(set('2', 150)), { mode: 0o400 }), (e: unknown) => {
      assert.ok(e instanceof WriterError);
      assert.equal(e.code, 'TOO_LARGE');
      assert.equal(e.errno, 'ENOSPC');
      assert.match(
        e.message,
        /the set of 2 file\(s\) takes 156 KiB .* the volume holds 256 KiB: set sidekey\.io\/tmpfs-size to at least 1Mi/,
      );
      return true;
    });
    assert.deepEqual(await visible(target), set('1', 150), 'the last good set stays');
  });
});

void describe('writeAtomic crash safety', () => {
  // Each kill point SIGKILLs a writer child at one step; a re-run must converge to the new payload.
  const killPoints: [string, string, number][] = [
    ['in the middle of writing the files', 'writeFile', 2],
    ['after ..data_tmp, before the rename', 'rename', 1],
    ['after the swap, before the user-visible links', 'lstat', 3],
    ['after the links, before removing the old dir', 'rm', 2],
  ];
  for (const [when, op, nth] of killPoints) {
    void it(`converges after a kill ${when}`, async () => {
      const target = await tempDir();
      await writeAtomic(target, payloadOf({ a: 'old', b: 'old', gone: 'old' }), { mode: 0o440 });
      const next = { a: 'new', b: 'new', c: 'new' };
      const child = spawnSync(NODE, [
        path.join(import.meta.dirname, 'testdata/kill-writer.ts'),
        target,
        op,
        String(nth),
        JSON.stringify(next),
      ]);
      assert.equal(child.signal, 'SIGKILL', child.stderr.toString());
      // Mid-crash, the set read through ..data is whole: all old or all new.
      const data = path.join(target, await fs.readlink(path.join(target, DATA_DIR)));
      const set = [await fs.readFile(path.join(data, 'a'), 'utf8'), await fs.readFile(path.join(data, 'b'), 'utf8')];
      assert.ok(set.every((v) => v === set[0]) && ['old', 'new'].includes(set[0] ?? ''), set.join());
      await writeAtomic(target, payloadOf(next), { mode: 0o440 });
      assert.deepEqual(await visible(target), next);
      await fs.rm(target, { recursive: true, force: true });
    });
  }
});

void describe('readers during swaps', () => {
  void it('see only whole files and consistent sets', async () => {
    const target = await tempDir();
    const big = (n: number): string => String(n % 10).repeat(50_000);
    await writeAtomic(target, payloadOf({ a: big(0), b: big(0) }), { mode: 0o444 });
    const reader = spawn(NODE, ['--input-type=module', '-e', READER, target], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const done = new Promise((resolve) => reader.on('exit', resolve));
    const deadline = Date.now() + 1500;
    let writes = 0;
    while (Date.now() < deadline) {
      writes += 1;
      await writeAtomic(target, payloadOf({ a: big(writes), b: big(writes) }), { mode: 0o444 });
    }
    reader.kill('SIGTERM');
    await done;
    const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { reads: number; torn: number; mixed: number };
    assert.ok(writes > 20 && report.reads > 100, `writes ${writes} reads ${report.reads}`);
    assert.equal(report.torn, 0);
    assert.equal(report.mixed, 0);
    await fs.rm(target, { recursive: true, force: true });
  });
});

// Reads single files (must be whole) and sets through one readlink of ..data (must be one version), until SIGTERM.
const READER = `
import { readFileSync, readlinkSync } from 'node:fs';
const t = process.argv[1];
let reads = 0, torn = 0, mixed = 0, stop = false;
process.on('SIGTERM', () => { stop = true; });
const whole = (s) => s.length === 50000 && s === s[0].repeat(50000);
function loop() {
  for (let i = 0; i < 50; i++) {
    reads++;
    if (!whole(readFileSync(t + '/a', 'utf8'))) torn++;
    try {
      const d = t + '/' + readlinkSync(t + '/..data');
      const a = readFileSync(d + '/a', 'utf8'), b = readFileSync(d + '/b', 'utf8');
      if (a !== b) mixed++;
    } catch (e) { if (e.code !== 'ENOENT') throw e; }
  }
  if (stop) { console.log(JSON.stringify({ reads, torn, mixed })); process.exit(0); }
  setImmediate(loop);
}
loop();
`;
