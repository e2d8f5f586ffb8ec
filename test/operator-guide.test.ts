// docs/operator-guide.md is executable: its `sh` blocks run in order, as one shell session (variables carry
// over, as in a reader's terminal), in a copy of this checkout, with the real helm, promtool, bao (a real
// OpenBao dev server) and kubectl against a real single-node Kubernetes of its own (test/cluster/) running the
// images built from the Dockerfiles. Blocks marked `sh cloud` need a real cloud account and are only checked
// to say so. Needs root (the cluster).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { clusterDown, clusterUp } from './cluster/cluster.ts';
import type { Cluster } from './cluster/cluster.ts';
import { importProjectImages } from './cluster/project-images.ts';
import { startOpenBao } from '../devkit/backends/openbao.ts';
import type { OpenBaoHandle } from '../devkit/backends/openbao.ts';
import { requireTool, TOOLS_DIR, VENV_BIN } from '../devkit/process.ts';

const ROOT = join(import.meta.dirname, '..');
const GUIDE = join(ROOT, 'docs', 'operator-guide.md');
const STATE_DIR = process.env['SIDEKEY_TEST_GUIDE_CLUSTER_STATE'] ?? join(TOOLS_DIR, 'cluster', 'state-guide');
const GO_BIN = join(TOOLS_DIR, 'bin');
const CLUSTER_BIN = join(TOOLS_DIR, 'cluster', 'bin');
const TOOL_DIRS = [GO_BIN, VENV_BIN, CLUSTER_BIN, dirname(process.execPath)];
for (const [dir, tool] of [
  [GO_BIN, 'helm'],
  [GO_BIN, 'promtool'],
  [VENV_BIN, 'bao'],
  [CLUSTER_BIN, 'kubectl'],
] as const)
  requireTool(join(dir, tool), tool);

interface GuideBlock {
  /** '' (run here), 'cluster' (run here, against the cluster) or 'cloud' (needs a real cloud account). */
  readonly tag: string;
  readonly script: string;
  /** The prose between the previous block and this one. */
  readonly before: string;
}

/** The `sh` blocks of a Markdown text, in order. */
function shellBlocks(markdown: string): GuideBlock[] {
  const blocks: GuideBlock[] = [];
  let last = 0;
  for (const m of markdown.matchAll(/^```(\w*)(?: (\w+))?\n([\s\S]*?)^```$/gm)) {
    if (m[1] === 'sh') blocks.push({ tag: m[2] ?? '', script: m[3] ?? '', before: markdown.slice(last, m.index) });
    last = m.index + m[0].length;
  }
  return blocks;
}

const blocks = shellBlocks(readFileSync(GUIDE, 'utf8'));
const scratch = mkdtempSync(join(tmpdir(), 'sidekey-guide-'));
let cluster: Cluster | undefined;
let bao: OpenBaoHandle | undefined;

/** A copy of the checkout's tracked files (the guide builds and writes there), sharing node_modules and .tools. */
function copyCheckout(dest: string): void {
  mkdirSync(dest, { recursive: true });
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT });
  execFileSync('sh', ['-c', `tar --null -T - -cf - | tar -xf - -C '${dest}'`], { cwd: ROOT, input: files });
  symlinkSync(join(ROOT, 'node_modules'), join(dest, 'node_modules'));
  symlinkSync(TOOLS_DIR, join(dest, '.tools'));
}

function runShell(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-x', '-c', script], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => {
      resolve({ status: code ?? -1, output });
    });
  });
}

before(async () => {
  await clusterDown({ stateDir: STATE_DIR });
  cluster = await clusterUp({ stateDir: STATE_DIR });
  await importProjectImages(cluster);
  bao = await startOpenBao();
});
after(async () => {
  await bao?.stop();
  await clusterDown({ stateDir: STATE_DIR });
  rmSync(scratch, { recursive: true, force: true });
});

void describe('operator guide', () => {
  void test('every block is run here or marked as needing a real cloud account', () => {
    assert.ok(blocks.length >= 8, `found ${blocks.length} sh blocks`);
    for (const b of blocks) {
      assert.ok(['', 'cluster', 'cloud'].includes(b.tag), `unknown block tag "${b.tag}"`);
      if (b.tag === 'cloud')
        assert.match(b.before, /needs a real cloud account/i, `a cloud block is not marked:\n${b.script}`);
    }
  });

  void test('the blocks run in order, as one session, and succeed', async () => {
    assert.ok(cluster !== undefined && bao !== undefined);
    const checkout = join(scratch, 'checkout');
    copyCheckout(checkout);
    const home = join(scratch, 'home');
    mkdirSync(home);
    const env: NodeJS.ProcessEnv = {
      PATH: [join(home, '.local', 'bin'), ...TOOL_DIRS, '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
      HOME: home,
      KUBECONFIG: cluster.layout.kubeconfig,
      BAO_ADDR: bao.addr,
      BAO_TOKEN: bao.rootToken,
      npm_config_cache: join(scratch, 'npm-cache'),
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };
    const script = blocks
      .filter((b) => b.tag !== 'cloud')
      .map((b) => b.script)
      .join('\n');
    const r = await runShell(script, checkout, env);
    assert.equal(r.status, 0, r.output.slice(-6000));
    // What the debugging section promises to show.
    assert.match(r.output, /"code":"UNAVAILABLE"/);
    assert.match(r.output, /Pending true/, 'the stuck pod is injected (labelled) and held in Init');
  });
});
