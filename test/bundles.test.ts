// `npm run build` output, used the way the images use it: each bundle alone in /app of a root that holds
// only node, run as uid 65532 with a read-only root and only its volumes writable (test/support/node-sandbox.ts).
// The CLI renders manifests exactly as the sources do, the agent serves secrets from the file store into its
// tmpfs volume and follows changes, the webhook boots on the chart's own configuration and mutates a pod over TLS;
// both long-running processes stop cleanly on SIGTERM as PID 1. The metafiles prove what each bundle holds.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { parseAllDocuments } from 'yaml';
import { agentImageLaunch } from '../bench/agent-image.ts';
import {
  buildAll,
  hasAccessors,
  LAZY_BUILTIN_MODULES,
  LAZY_BUILTINS,
  OPTIONAL_REQUIRES,
  ROOT,
  type BuiltBundle,
} from '../scripts/build.ts';
import { CHART_DIR } from '../scripts/chart-values-schema.ts';
import { httpCall, type HttpAnswer } from '../devkit/http.ts';
import { freePort, requireTool, startProcess, TOOLS_DIR, waitUntil } from '../devkit/process.ts';
import { NONROOT, runInSandbox, startInSandbox } from './support/node-sandbox.ts';
import { assertNoLeak } from './support/no-leak.ts';
import { startFakeKubeApi } from './support/fake-kube-api.ts';
import { startOpenBao } from '../devkit/backends/openbao.ts';
import { createTestCa } from './support/test-ca.ts';
import { PROVIDERS } from '../injector/providers/names.ts';
import { podReview } from '../devkit/pod-review.ts';

const run = promisify(execFile);
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
/** A provider's two halves in its folder: providers/<name>/injector/ (the webhook's) and providers/<name>/agent/. */
const DECLARATION_HALF = /^providers\/[^/]+\/injector\//;
const AGENT_HALF = /^providers\/[^/]+\/agent\//;
/** The agent image's node flags (--jitless among them) and ENV: the agent runs here as it runs in a pod. */
const AGENT_IMAGE = agentImageLaunch();
const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');
const work = mkdtempSync(join(tmpdir(), 'sidekey-bundles-'));
const outDir = join(work, 'dist');
let bundles: Readonly<Record<string, BuiltBundle>> = {};

before(async () => {
  const built = await buildAll(outDir);
  bundles = Object.fromEntries(built.map((b) => [b.name, b]));
});
after(() => {
  rmSync(work, { recursive: true, force: true });
});

const bundle = (name: string): BuiltBundle => {
  const b = bundles[name];
  assert.ok(b !== undefined, `no ${name} bundle`);
  return b;
};

/** Inputs reachable from the entry through static imports and require() only: what runs at start. */
function eagerInputs(metafile: Metafile): Set<string> {
  const entry = Object.keys(metafile.inputs).find((input) => input.endsWith('-entry.ts'));
  assert.ok(entry !== undefined);
  const seen = new Set<string>();
  const pending = [entry];
  for (let input = pending.pop(); input !== undefined; input = pending.pop()) {
    if (seen.has(input)) continue;
    seen.add(input);
    for (const i of metafile.inputs[input]?.imports ?? [])
      if (i.kind !== 'dynamic-import' && i.external !== true) pending.push(i.path);
  }
  return seen;
}

/** Inputs from an npm package (paths are relative to the root, or lead elsewhere when node_modules is a link). */
const fromPackage = (inputs: Iterable<string>, pkg: string): string[] =>
  [...inputs].filter((i) => `/${i}`.includes(`/node_modules/${pkg}/`));

void describe('bundle contents', () => {
  void test('self-contained: the only imports left are Node built-ins and optional requires', () => {
    for (const name of ['agent', 'webhook', 'sidekey']) {
      const { metafile } = bundle(name);
      const externals = Object.values(metafile.outputs).flatMap((o) =>
        o.imports.filter((i) => i.external).map((i) => i.path),
      );
      assert.deepEqual(
        externals.filter((path) => !isBuiltin(path) && !OPTIONAL_REQUIRES.includes(path)),
        [],
        name,
      );
      assert.match(
        readFileSync(bundle(name).file, 'utf8').slice(0, 200),
        /createRequire\(import\.meta\.url\)/,
        `${name}: require() for CommonJS dependencies`,
      );
    }
  });

  void test('no ES import of a built-in whose module object has getters: its namespace would run them all (node:http loads undici)', () => {
    assert.ok(hasAccessors('node:http') && !hasAccessors('node:path'));
    for (const name of ['agent', 'webhook', 'sidekey']) {
      const imports = Object.values(bundle(name).metafile.outputs).flatMap((o) =>
        o.imports.filter((i) => i.external && i.kind !== 'require-call'),
      );
      assert.ok(imports.length > 0, `${name}: ES imports of built-ins are left in the bundle`);
      assert.deepEqual([...new Set(imports.filter((i) => hasAccessors(i.path)).map((i) => i.path))], [], name);
    }
  });

  void test('the agent bundle holds no Kubernetes client, and loads each provider with its SDK only when used', () => {
    const { metafile } = bundle('agent');
    const inputs = Object.keys(metafile.inputs);
    assert.deepEqual(fromPackage(inputs, '@kubernetes/client-node'), []);
    const eager = eagerInputs(metafile);
    for (const provider of PROVIDERS) {
      const module = `providers/${provider}/agent/${provider}.ts`;
      assert.ok(inputs.includes(module), `${module} is bundled`);
      assert.ok(!eager.has(module), `${module} is not loaded at start`);
    }
    for (const sdk of ['@aws-sdk/client-secrets-manager', 'node-vault', 'chokidar', 'yaml']) {
      assert.notDeepEqual(fromPackage(inputs, sdk), [], `${sdk} is bundled`);
      assert.deepEqual(fromPackage(eager, sdk), [], `${sdk} is not loaded at start`);
    }
  });

  void test('each side carries only its half of a provider: no declaration in the agent, no fetch code in the webhook', () => {
    const agent = Object.keys(bundle('agent').metafile.inputs);
    assert.deepEqual(
      agent.filter(
        (i) => (i.startsWith('injector/providers/') && i !== 'injector/providers/names.ts') || DECLARATION_HALF.test(i),
      ),
      [],
    );
    const webhook = Object.keys(bundle('webhook').metafile.inputs);
    assert.ok(webhook.includes('injector/providers/index.ts'), 'the webhook bundles the provider registry');
    assert.deepEqual(
      webhook.filter((i) => i.startsWith('agent/providers/') || AGENT_HALF.test(i)),
      [],
    );
  });

  void test('node-vault is bundled without axios: it always gets our transport', () => {
    for (const name of ['agent', 'sidekey']) {
      const inputs = Object.keys(bundle(name).metafile.inputs);
      for (const pkg of ['axios', 'form-data', 'mime-db', 'follow-redirects'])
        assert.deepEqual(fromPackage(inputs, pkg), [], `${name} bundle: ${pkg}`);
    }
  });

  void test('https, tls and http2 load on the first use of one of their exports, not when required', async () => {
    const entry = `import { request } from 'node:https';
      import { constants } from 'node:http2';
      import * as tls from 'node:tls';
      const loaded = () => process.moduleLoadList.filter((m) => /^NativeModule (https|tls|http2)$/.test(m)).map((m) => m.slice(13)).sort();
      const atStart = loaded();
      const header = constants.HTTP2_HEADER_PATH;
      const afterConstants = loaded();
      const secure = typeof request === 'function' && tls.DEFAULT_MIN_VERSION.startsWith('TLS');
      process.stdout.write(JSON.stringify({ atStart, header, afterConstants, secure, atEnd: loaded() }));`;
    const result = await build({
      stdin: { contents: entry, loader: 'js' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      plugins: [LAZY_BUILTIN_MODULES],
      logLevel: 'error',
    });
    const ran = spawnSync(NODE, ['--input-type=module'], {
      input: result.outputFiles[0]?.text ?? '',
      encoding: 'utf8',
    });
    assert.equal(ran.status, 0, ran.stderr);
    // http2 needs tls itself; https waits for its own first use.
    assert.deepEqual(JSON.parse(ran.stdout), {
      atStart: [],
      header: ':path',
      afterConstants: ['http2', 'tls'],
      secure: true,
      atEnd: [...LAZY_BUILTINS].sort(),
    });
  });

  void test('the webhook bundle holds no secret-store SDK (it makes no backend calls), and its Kubernetes client is lazy', () => {
    const { metafile } = bundle('webhook');
    const inputs = Object.keys(metafile.inputs);
    for (const sdk of ['@aws-sdk/client-secrets-manager', 'node-vault'])
      assert.deepEqual(fromPackage(inputs, sdk), [], sdk);
    assert.ok(!inputs.some((i) => i.startsWith('agent/providers/') || AGENT_HALF.test(i)));
    assert.deepEqual(
      fromPackage(eagerInputs(metafile), '@kubernetes/client-node'),
      [],
      'loaded only to read the cluster version',
    );
  });

  void test('the CLI bundle loads a subcommand only when it runs', () => {
    const eager = [...eagerInputs(bundle('sidekey').metafile)].filter((i) => !i.endsWith('-entry.ts'));
    // package.json is data (--version reads it), not code.
    assert.deepEqual(eager.sort(), ['cli/commands.ts', 'cli/release.ts', 'package.json']);
  });

  void test('no bundle ships test code, devkit/ or the demo: the release CLI points the demo at a source checkout', () => {
    for (const name of ['agent', 'webhook', 'sidekey']) {
      const shipped = Object.keys(bundle(name).metafile.inputs).filter(
        (i) => i.startsWith('test/') || i.startsWith('devkit/') || i.startsWith('cli/demo'),
      );
      assert.deepEqual(shipped, [], `${name} bundle inputs from test/, devkit/ or the demo`);
    }
    const demo = spawnSync(process.execPath, [bundle('sidekey').file, 'demo'], { encoding: 'utf8' });
    assert.equal(demo.status, 2);
    assert.match(demo.stderr, /runs from a source checkout \(npm install && npm run demo\)/);
  });
});

void describe('bundles in the image sandbox (uid 65532, read-only root, only node)', () => {
  void test('sidekey render prints what the sources print', async () => {
    const fixture = join(ROOT, 'test', 'fixtures', 'render', 'workloads.yaml');
    const expected = await run(
      NODE,
      [join(ROOT, 'cli', 'sidekey.ts'), 'render', '--aws-region', 'eu-west-1', fixture],
      { encoding: 'utf8' },
    );
    const sandboxed = await runInSandbox({
      bundle: bundle('sidekey').file,
      args: ['render', '--aws-region', 'eu-west-1', '/manifests/workloads.yaml'],
      volumes: [{ hostPath: join(ROOT, 'test', 'fixtures', 'render'), mountPath: '/manifests', readOnly: true }],
    });
    assert.equal(sandboxed.code, 0, sandboxed.output);
    assert.equal(sandboxed.output, expected.stdout + expected.stderr);
    assert.match(sandboxed.output, /name: sidekey-agent/);
  });

  void test('the agent writes file-store secrets into its volume, follows a change, and stops on SIGTERM', async () => {
    const store = join(work, 'store');
    mkdirSync(join(store, 'payments'), { recursive: true });
    const [first, second] = ['pw-first-5b1e', 'pw-second-c07a'];
    writeFileSync(join(store, 'payments', 'db.yaml'), `username: app\npassword: ${first}\n`);
    const port = await freePort();
    const config = {
      version: 1,
      mode: 'sidecar',
      role: 'run',
      secretsDir: '/sidekey/secrets',
      port,
      fileMode: 0o400,
      files: [{ name: 'db-password', ref: { provider: 'file', path: 'payments/db', field: 'password' } }],
      reload: { kind: 'none' },
    };
    const agent = startInSandbox({
      bundle: bundle('agent').file,
      bundleDir: bundle('agent').dir!,
      env: { SIDEKEY_CONFIG: JSON.stringify(config), SIDEKEY_FILE_STORE: '/store' },
      volumes: [
        { hostPath: store, mountPath: '/store', readOnly: true },
        { tmpfsSize: '1m', mountPath: '/sidekey/secrets' },
      ],
    });
    try {
      await waitUntil(
        'agent startup probe',
        agent,
        async () => (await fetch(`http://127.0.0.1:${port}/startup`)).status === 200,
      );
      const written = agent.hostPath('/sidekey/secrets/db-password');
      assert.equal(readFileSync(written, 'utf8'), first);
      const stat = statSync(written);
      assert.deepEqual([stat.uid, stat.mode & 0o777], [NONROOT, 0o400], "the agent's own file, mode 0400");
      writeFileSync(join(store, 'payments', 'db.yaml'), `username: app\npassword: ${second}\n`);
      await waitUntil('agent picks up the change', agent, () =>
        Promise.resolve(readFileSync(written, 'utf8') === second),
      );
    } finally {
      await agent.stop();
    }
    assert.equal(agent.child.exitCode, 0, `the agent stops cleanly on SIGTERM as PID 1:\n${agent.output()}`);
    assertNoLeak([agent.output()], [first, second]);
  });

  void test("the agent at steady state (file store changes, http reloads, probes; the image's node flags) never loads Node's bundled undici", async () => {
    const store = join(work, 'undici-store');
    mkdirSync(store, { recursive: true });
    writeFileSync(join(store, 'app.yaml'), 'password: undici-first\n');
    let reloads = 0;
    const app = createServer((_req, res) => {
      reloads += 1;
      res.end();
    }).listen(0, '127.0.0.1');
    await once(app, 'listening');
    const loadedFile = join(work, 'undici-loaded.txt');
    // Written when the agent exits: every built-in module it loaded, undici (internal/deps/undici) included.
    const probe = `import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(${JSON.stringify(loadedFile)}, process.moduleLoadList.join('\\n')));`;
    const port = await freePort();
    const config = {
      version: 1,
      mode: 'sidecar',
      role: 'run',
      secretsDir: join(work, 'undici-secrets'),
      port,
      fileMode: 0o400,
      files: [{ name: 'password', ref: { provider: 'file', path: 'app', field: 'password' } }],
      reload: { kind: 'http', url: `http://127.0.0.1:${(app.address() as AddressInfo).port}/-/reload` },
    };
    const agent = startProcess(
      NODE,
      [...AGENT_IMAGE.nodeFlags, '--import', `data:text/javascript,${encodeURIComponent(probe)}`, bundle('agent').file],
      {
        env: {
          PATH: process.env.PATH ?? '',
          ...AGENT_IMAGE.env,
          SIDEKEY_CONFIG: JSON.stringify(config),
          SIDEKEY_FILE_STORE: store,
        },
      },
    );
    const get = (path: string): Promise<number> =>
      httpCall(new URL(path, `http://127.0.0.1:${port}`), { method: 'GET', timeoutMs: 1000 }).then(
        (a) => a.status,
        () => 0,
      );
    try {
      await waitUntil('agent startup', agent, async () => (await get('/startup')) === 200);
      for (const [i, value] of ['undici-second', 'undici-third'].entries()) {
        writeFileSync(join(store, 'app.yaml'), `password: ${value}\n`);
        await waitUntil('the reload POST', agent, () => Promise.resolve(reloads > i));
      }
      for (const path of ['/healthz', '/readyz', '/metrics']) assert.equal(await get(path), 200);
    } finally {
      await agent.stop();
      app.close();
    }
    const loaded = readFileSync(loadedFile, 'utf8').split('\n');
    assert.ok(loaded.includes('NativeModule http'), "the probe sees the agent's modules");
    assert.deepEqual(
      loaded.filter((m) => m.includes('undici')),
      [],
    );
  });

  void test("the agent reads Vault over TLS with a private CA (https loads on its first call; the image's node flags)", async () => {
    const bao = await startOpenBao({ tls: true });
    const dir = mkdtempSync(join(work, 'vault-tls-'));
    const tokenFile = join(work, 'vault-tls-token');
    writeFileSync(tokenFile, bao.rootToken);
    try {
      await bao.api('POST', 'secret/data/app', { data: { password: 'over-tls' } });
      const config = {
        version: 1,
        mode: 'init-only',
        role: 'init',
        secretsDir: join(dir, 'secrets'),
        port: await freePort(),
        fileMode: 0o400,
        files: [{ name: 'password', ref: { provider: 'vault', path: 'secret/app', field: 'password' } }],
        reload: { kind: 'none' },
        vault: { addr: bao.addr, auth: 'token', authPath: 'token', tokenFile, caFile: bao.caFile ?? '' },
      };
      mkdirSync(config.secretsDir);
      const ran = await run(NODE, [...AGENT_IMAGE.nodeFlags, bundle('agent').file], {
        env: { PATH: process.env.PATH ?? '', ...AGENT_IMAGE.env, SIDEKEY_CONFIG: JSON.stringify(config) },
      });
      assertNoLeak([ran.stdout, ran.stderr], ['over-tls']);
      assert.equal(readFileSync(join(config.secretsDir, 'password'), 'utf8'), 'over-tls');
    } finally {
      await bao.stop();
    }
  });

  void test("the webhook boots on the chart's configuration, reads the cluster version (its Kubernetes client chunk), answers over TLS and stops on SIGTERM", async () => {
    const chart = await run(HELM, [
      'template',
      'sk',
      CHART_DIR,
      '--namespace',
      'sidekey-system',
      '--kube-version',
      '1.30.0',
      '--set',
      'config.aws.region=eu-west-1',
      '--show-only',
      'templates/configmap.yaml',
    ]);
    const configMap = parseAllDocuments(chart.stdout)[0]?.toJS() as { data: Record<string, string> };
    const [port, metricsPort] = [await freePort(), await freePort()];
    const config = { ...(JSON.parse(configMap.data['config.json']!) as object), port, metricsPort };
    const configDir = join(work, 'webhook-config');
    const tlsDir = join(work, 'webhook-tls');
    mkdirSync(configDir);
    mkdirSync(tlsDir);
    writeFileSync(join(configDir, 'config.json'), JSON.stringify(config));
    const ca = createTestCa();
    const leaf = ca.issue('sidekey-webhook');
    ca.dispose();
    writeFileSync(join(tlsDir, 'tls.crt'), leaf.cert);
    writeFileSync(join(tlsDir, 'tls.key'), leaf.key, { mode: 0o644 });
    // sidecarMode auto (the chart's default) with a cluster configured: the webhook loads its Kubernetes client.
    const kubeDir = join(work, 'webhook-kube');
    mkdirSync(kubeDir);
    const kube = await startFakeKubeApi(join(work, 'fake-kubeconfig'));
    // The fake API speaks plain HTTP, which @kubernetes/client-node accepts only with TLS verification off.
    const kubeconfig = JSON.parse(readFileSync(kube.kubeconfig, 'utf8')) as {
      clusters: { cluster: Record<string, unknown> }[];
    };
    for (const { cluster } of kubeconfig.clusters) cluster['insecure-skip-tls-verify'] = true;
    writeFileSync(join(kubeDir, 'config'), JSON.stringify(kubeconfig), { mode: 0o644 });
    const webhook = startInSandbox({
      bundle: bundle('webhook').file,
      bundleDir: bundle('webhook').dir!,
      // The chart's container args and mounts.
      args: ['--config', '/etc/sidekey/config/config.json'],
      env: { POD_NAMESPACE: 'sidekey-system', KUBECONFIG: '/etc/sidekey/kube/config' },
      volumes: [
        { hostPath: configDir, mountPath: '/etc/sidekey/config', readOnly: true },
        { hostPath: tlsDir, mountPath: '/etc/sidekey/tls', readOnly: true },
        { hostPath: kubeDir, mountPath: '/etc/sidekey/kube', readOnly: true },
      ],
    });
    const call = (path: string, body?: unknown): Promise<HttpAnswer> =>
      httpCall(new URL(path, `https://127.0.0.1:${port}`), {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        ca: ca.caCert,
        timeoutMs: 2000,
      });
    try {
      await waitUntil('webhook /healthz over TLS', webhook, async () => (await call('/healthz')).status === 200);
      assert.equal((await call('/readyz')).status, 200);
      // Log lines are buffered (flushed within a second).
      await waitUntil('the cluster version in the log', webhook, () =>
        Promise.resolve(webhook.output().includes('"event":"cluster_version"')),
      );
      assert.match(webhook.output(), /"event":"cluster_version","major":"1","minor":"30","nativeSidecars":true/);
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'app',
          namespace: 'team',
          annotations: { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db': 'aws:prod/db#password' },
        },
        spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'app', image: 'app' }] },
      };
      const review = podReview(pod, { namespace: 'team' });
      const answer = await call('/mutate', review);
      assert.equal(answer.status, 200, answer.text);
      const { response } = JSON.parse(answer.text) as {
        response: { uid: string; allowed: boolean; patchType: string; patch: string };
      };
      assert.equal(response.uid, 'u-1');
      assert.equal(response.allowed, true);
      assert.equal(response.patchType, 'JSONPatch');
      const patch = Buffer.from(response.patch, 'base64').toString('utf8');
      assert.match(patch, /"name":"sidekey-agent"/);
      assert.ok(
        patch.includes(`"image":"ghcr.io/sidekey/sidekey-agent:${PACKAGE_VERSION}"`),
        "the chart's agent image, tagged appVersion, reaches the pod",
      );
    } finally {
      await webhook.stop(15_000);
      await kube.close();
    }
    assert.equal(
      webhook.child.exitCode,
      0,
      `the webhook drains and exits cleanly on SIGTERM as PID 1:\n${webhook.output()}`,
    );
  });
});
