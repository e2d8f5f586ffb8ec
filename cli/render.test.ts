// `sidekey render`: every workload kind, the same result as the webhook, and error lines on bad input.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyPatch } from 'rfc6902';
import { parseAllDocuments, stringify } from 'yaml';
import { TEMPLATE_PATHS } from '../injector/workloads.ts';
import { reviewAdmission, reviewContext } from '../webhook/review.ts';
import { webhookConfigSchema } from '../webhook/config.ts';
import { reviewWorkload } from '../webhook/workload-review.ts';
import { manifestFiles } from './manifests.ts';
import { render, run as runCommand } from './render.ts';
import type { RenderIo } from './render.ts';
import { podReview } from '../devkit/pod-review.ts';

const WORKLOADS = new URL('../test/fixtures/render/workloads.yaml', import.meta.url).pathname;

function run(
  argv: readonly string[],
  files: Record<string, string> = {},
  command: 'render' | 'lint' = 'render',
): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: RenderIo = {
    readFile: (path) => files[path] ?? readFileSync(path, 'utf8'),
    expand: (path) => (path in files ? [path] : manifestFiles(path)),
    env: {},
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
  };
  return { code: command === 'render' ? render(argv, io) : runCommand(command, argv, io), out, err };
}

function docs(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
}

function podTemplate(doc: Record<string, unknown>): {
  metadata: Record<string, unknown>;
  spec: { initContainers?: { name: string }[] };
} {
  const path = doc['kind'] === 'Pod' ? [] : (TEMPLATE_PATHS[String(doc['kind'])] ?? []);
  return path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], doc) as ReturnType<typeof podTemplate>;
}

void describe('sidekey render', () => {
  void it('mutates the pod of every workload kind and passes other objects through', () => {
    const { code, out, err } = run(['--aws-region', 'eu-west-1', WORKLOADS]);
    assert.equal(code, 0, err);
    assert.equal(err, '');
    const input = docs(readFileSync(WORKLOADS, 'utf8'));
    const output = docs(out);
    assert.equal(output.length, input.length);
    assert.deepEqual(output[0], input[0]);
    for (const doc of output.slice(1, -1)) {
      const pod = podTemplate(doc);
      assert.match(
        String((pod.metadata['annotations'] as Record<string, string>)['sidekey.io/status']),
        /^injected /,
        String(doc['kind']),
      );
      assert.equal(pod.spec.initContainers?.[0]?.name, 'sidekey-agent', String(doc['kind']));
    }
    assert.deepEqual(output.at(-1), input.at(-1));
  });

  void it('prints exactly what the webhook does to the same pod with the same configuration', () => {
    const { out } = run(['--aws-region', 'eu-west-1', WORKLOADS]);
    const pod = docs(readFileSync(WORKLOADS, 'utf8'))[1];
    const review = podReview(pod, { uid: 'u', namespace: 'shop' });
    const config = webhookConfigSchema.parse({ aws: { region: 'eu-west-1' } });
    const answer = reviewAdmission(JSON.stringify(review), reviewContext(config)).body as {
      response: { patch: string };
    };
    const patched = structuredClone(pod);
    applyPatch(
      patched,
      JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Parameters<typeof applyPatch>[1],
    );
    assert.deepEqual(docs(out)[1], patched);
  });

  void it('reads stdin as "-"', () => {
    const { code, out } = run(['--aws-region=eu-west-1', '-'], { '-': readFileSync(WORKLOADS, 'utf8') });
    assert.equal(code, 0);
    assert.ok(out.includes('sidekey-agent'));
  });

  void it('refuses bad annotations with FILE: Kind/name: annotation lines and prints nothing', () => {
    const bad =
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    metadata:\n      annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:prod/db#", sidekey.io/refresh: 5s}\n    spec: {containers: [{name: web, image: web}]}\n';
    const { code, out, err } = run(['bad.yaml'], { 'bad.yaml': bad });
    assert.equal(code, 1);
    assert.equal(out, '');
    const lines = err.trim().split('\n');
    assert.ok(
      lines.includes(
        'bad.yaml: Deployment/web: annotation "sidekey.io/secret-db": the #field is empty or not [A-Za-z0-9_.-]; the grammar is <provider>:<path>[#<field>][@<version>]; example: sidekey.io/secret-db: "aws:prod/db#password"',
      ),
      err,
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith('bad.yaml: Deployment/web: annotation "sidekey.io/refresh": is shorter than the floor of 30s'),
      ),
      err,
    );
  });

  void it('reports invalid YAML, unreadable files and usage errors', () => {
    assert.equal(run(['x.yaml'], { 'x.yaml': 'a: [1, 2\n' }).code, 1);
    assert.match(run(['x.yaml'], { 'x.yaml': 'a: [1, 2\n' }).err, /^x\.yaml: document 1: invalid YAML: /);
    assert.equal(run(['/nonexistent/file.yaml']).code, 1);
    assert.equal(run([]).code, 2);
    assert.equal(run(['--bogus', 'x']).code, 2);
    assert.equal(run(['--sidecar-mode', 'sometimes', WORKLOADS]).code, 2);
  });

  void it('takes -f repeatedly, directories recursively, and expands kind: List', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidekey-render-'));
    try {
      mkdirSync(join(dir, 'nested'));
      const pod = (name: string): object => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          annotations: { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db': 'aws:prod/db#password' },
        },
        spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'app', image: 'app' }] },
      });
      writeFileSync(join(dir, 'a.yaml'), stringify(pod('a')));
      writeFileSync(
        join(dir, 'nested', 'list.json'),
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pod('b'), pod('c')] }),
      );
      writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
      const { code, out, err } = run(['--aws-region', 'eu-west-1', '-f', dir, '-f', WORKLOADS]);
      assert.equal(code, 0, err);
      const names = docs(out).map((d) => (d['metadata'] as { name: string }).name);
      assert.deepEqual(names.slice(0, 3), ['a', 'b', 'c']);
      assert.equal(names.length, 3 + docs(readFileSync(WORKLOADS, 'utf8')).length);
      const json = run(['--aws-region', 'eu-west-1', '-o', 'json', '--filename', dir]);
      const list = JSON.parse(json.out) as {
        kind: string;
        items: { metadata: { name: string; labels: Record<string, string> } }[];
      };
      assert.equal(list.kind, 'List');
      assert.deepEqual(
        list.items.map((i) => i.metadata.name),
        ['a', 'b', 'c'],
      );
      assert.equal(list.items[0]?.metadata.labels['sidekey.io/injected'], 'true');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('notes a manifest whose namespace is excluded, and leaves it as it is', () => {
    const text =
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: kube-system, annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:x#y"}}\nspec: {containers: [{name: a, image: a}]}\n';
    const { code, out, err } = run(['--aws-region', 'eu-west-1', 'p.yaml'], { 'p.yaml': text });
    assert.equal(code, 0);
    assert.equal(
      err,
      'p.yaml: Pod/p: note: namespace "kube-system" is excluded from injection: the webhook never sees this pod\n',
    );
    assert.deepEqual(docs(out)[0], docs(text)[0]);
  });

  void it('says "quote it" for a sidekey.io value YAML read as a boolean or a number, in render and lint', () => {
    const text =
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    metadata:\n      annotations:\n        sidekey.io/inject: true\n        sidekey.io/secret-db: "aws:prod/db"\n        sidekey.io/file-mode: 0400\n    spec: {containers: [{name: a, image: a}]}\n';
    for (const command of ['render', 'lint'] as const) {
      const { code, out, err } = run(['--aws-region', 'eu-west-1', 'd.yaml'], { 'd.yaml': text }, command);
      assert.equal(code, 1, command);
      assert.equal(out, '');
      assert.equal(
        err,
        [
          'd.yaml: Deployment/d: annotation "sidekey.io/inject": YAML reads the unquoted true as a boolean, but annotation values are strings (kubectl refuses it); quote it; example: sidekey.io/inject: "true"',
          'd.yaml: Deployment/d: annotation "sidekey.io/file-mode": YAML reads the unquoted 0400 as a number, but annotation values are strings (kubectl refuses it); quote it; example: sidekey.io/file-mode: "0400"',
          '',
        ].join('\n'),
      );
    }
  });

  void it('lint prints only problems: 0 clean, 1 refused, 1 warned with --strict, 2 usage', () => {
    const clean = run(['--aws-region', 'eu-west-1', '-f', WORKLOADS], {}, 'lint');
    assert.deepEqual([clean.code, clean.out, clean.err], [0, '', '']);
    const bad =
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:x#"}}\nspec: {containers: [{name: a, image: a}]}\n';
    const refused = run(['--aws-region', 'eu-west-1', 'bad.yaml'], { 'bad.yaml': bad }, 'lint');
    assert.equal(refused.code, 1);
    assert.equal(refused.out, '');
    assert.match(refused.err, /^bad\.yaml: Pod\/p: annotation "sidekey\.io\/secret-db": /);
    // No runAsUser nor fsGroup: injected with a warning (world-readable files).
    const warned =
      'apiVersion: v1\nkind: Pod\nmetadata: {name: w, annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:x#y"}}\nspec: {containers: [{name: a, image: a}]}\n';
    const lenient = run(['--aws-region', 'eu-west-1', 'w.yaml'], { 'w.yaml': warned }, 'lint');
    assert.equal(lenient.code, 0);
    assert.match(lenient.err, /^w\.yaml: Pod\/w: warning: /);
    assert.equal(run(['--strict', '--aws-region', 'eu-west-1', 'w.yaml'], { 'w.yaml': warned }, 'lint').code, 1);
    assert.equal(run(['-o', 'json', WORKLOADS], {}, 'lint').code, 2);
    assert.equal(run([], {}, 'lint').code, 2);
  });

  void it('lint says of a missing AWS region what admission says: a workload warned, as /validate; a Pod refused, as /mutate', () => {
    const annotations = { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db': 'aws:prod/db#password' };
    const spec = { securityContext: { runAsUser: 1000 }, containers: [{ name: 'web', image: 'nginx' }] };
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { annotations }, spec } },
    };
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop', annotations }, spec };
    const ctx = reviewContext(webhookConfigSchema.parse({}));
    const validate = reviewWorkload(
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'wl-1',
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          namespace: 'shop',
          operation: 'CREATE',
          object: deployment,
        },
      }),
      ctx,
      'refuse',
    );
    const workloadAnswer = (validate.body as { response: { allowed: boolean; warnings?: string[] } }).response;
    assert.equal(workloadAnswer.allowed, true);
    const linted = run(['d.yaml'], { 'd.yaml': stringify(deployment) }, 'lint');
    assert.equal(linted.code, 0, linted.err);
    // The same warnings; admission responses cut each one short (Kubernetes' limit), lint prints it whole.
    const lines = linted.err.trimEnd().split('\n');
    const warnings = workloadAnswer.warnings ?? [];
    assert.equal(lines.length, warnings.length, linted.err);
    for (const [i, w] of warnings.entries())
      assert.ok(lines[i]?.startsWith(`d.yaml: Deployment/web: warning: ${w.replace(/…$/, '')}`), lines[i]);
    assert.match(linted.err, /no AWS region.*unless a webhook adds AWS_REGION/);
    assert.equal(run(['--strict', 'd.yaml'], { 'd.yaml': stringify(deployment) }, 'lint').code, 1);

    const mutate = reviewAdmission(JSON.stringify(podReview(pod, { uid: 'p-1', namespace: 'shop' })), ctx);
    const podAnswer = (mutate.body as { response: { allowed: boolean; status?: { message: string } } }).response;
    assert.equal(podAnswer.allowed, false);
    const lintedPod = run(['p.yaml'], { 'p.yaml': stringify(pod) }, 'lint');
    assert.equal(lintedPod.code, 1);
    assert.match(lintedPod.err, /^p\.yaml: Pod\/p: annotation "sidekey\.io\/aws-region": no AWS region/);
    assert.ok(podAnswer.status?.message.includes('no AWS region'), podAnswer.status?.message);
  });

  void it('answers usage errors in its own words, with the usage', () => {
    const unknown = run(['--bogus', 'x']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /^sidekey render: unknown option "--bogus"\nusage: sidekey render /);
    assert.doesNotMatch(unknown.err, /positional argument/);
    assert.match(run(['-f']).err, /^sidekey render: option "--filename" needs a value\n/);
    assert.match(run(['-o', 'table', WORKLOADS]).err, /^sidekey render: -o must be yaml or json, not "table"\n/);
    assert.match(run(['--strict', WORKLOADS]).err, /--strict belongs to sidekey lint/);
  });

  void it('refuses the removed classic mode in the configuration, saying native sidecars are needed', () => {
    const sidecar = run(['--aws-region', 'eu-west-1', '--sidecar-mode', 'classic', WORKLOADS]);
    assert.equal(sidecar.code, 2);
    assert.equal(sidecar.out, '');
    assert.match(
      sidecar.err,
      /classic was removed: Sidekey needs native sidecars \(Kubernetes 1\.29\+\); upgrade an older cluster, and use auto \(the default\) or native\n *→ at sidecarMode\n/,
    );
    const mode = run(['--aws-region', 'eu-west-1', '--default-mode', 'classic', WORKLOADS]);
    assert.equal(mode.code, 2);
    assert.match(
      mode.err,
      /classic mode was removed: Sidekey needs native sidecars \(Kubernetes 1\.29\+\); use sidecar \(the default\), or init-only for Jobs\n *→ at defaultMode\n/,
    );
  });
});
