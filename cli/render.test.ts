// `sidekey render`: every workload kind, the same result as the webhook, and error lines on bad input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { applyPatch } from 'rfc6902';
import { parseAllDocuments } from 'yaml';
import { TEMPLATE_PATHS } from '../injector/workloads.ts';
import { reviewAdmission, reviewContext } from '../webhook/review.ts';
import { webhookConfigSchema } from '../webhook/config.ts';
import { render } from './render.ts';
import type { RenderIo } from './render.ts';

const WORKLOADS = new URL('../test/fixtures/render/workloads.yaml', import.meta.url).pathname;

function run(argv: readonly string[], files: Record<string, string> = {}): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: RenderIo = {
    readFile: (path) => files[path] ?? readFileSync(path, 'utf8'),
    env: {},
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
  };
  return { code: render(argv, io), out, err };
}

function docs(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
}

function podTemplate(doc: Record<string, unknown>): { metadata: Record<string, unknown>; spec: { initContainers?: { name: string }[] } } {
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
      assert.match(String((pod.metadata['annotations'] as Record<string, string>)['sidekey.io/status']), /^injected /, String(doc['kind']));
      assert.equal(pod.spec.initContainers?.[0]?.name, 'sidekey-agent', String(doc['kind']));
    }
    assert.deepEqual(output.at(-1), input.at(-1));
  });

  void it('prints exactly what the webhook does to the same pod with the same configuration', () => {
    const { out } = run(['--aws-region', 'eu-west-1', WORKLOADS]);
    const pod = docs(readFileSync(WORKLOADS, 'utf8'))[1];
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: pod } };
    const config = webhookConfigSchema.parse({ aws: { region: 'eu-west-1' } });
    const answer = reviewAdmission(JSON.stringify(review), reviewContext(config, true)).body as { response: { patch: string } };
    const patched = structuredClone(pod);
    applyPatch(patched, JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Parameters<typeof applyPatch>[1]);
    assert.deepEqual(docs(out)[1], patched);
  });

  void it('reads stdin as "-"', () => {
    const { code, out } = run(['--aws-region=eu-west-1', '-'], { '-': readFileSync(WORKLOADS, 'utf8') });
    assert.equal(code, 0);
    assert.ok(out.includes('sidekey-agent'));
  });

  void it('refuses bad annotations with FILE: Kind/name: annotation lines and prints nothing', () => {
    const bad = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    metadata:\n      annotations: {sidekey.io/inject: "true", sidekey.io/secret-db: "aws:prod/db#", sidekey.io/refresh: 5s}\n    spec: {containers: [{name: web, image: web}]}\n';
    const { code, out, err } = run(['bad.yaml'], { 'bad.yaml': bad });
    assert.equal(code, 1);
    assert.equal(out, '');
    const lines = err.trim().split('\n');
    assert.ok(lines.includes('bad.yaml: Deployment/web: annotation "sidekey.io/secret-db": the #field is empty or not [A-Za-z0-9_.-]; the grammar is <provider>:<path>[#<field>][@<version>]; example: sidekey.io/secret-db: "aws:prod/db#password"'), err);
    assert.ok(lines.some((l) => l.startsWith('bad.yaml: Deployment/web: annotation "sidekey.io/refresh": is shorter than the floor of 30s')), err);
  });

  void it('reports invalid YAML, unreadable files and usage errors', () => {
    assert.equal(run(['x.yaml'], { 'x.yaml': 'a: [1, 2\n' }).code, 1);
    assert.match(run(['x.yaml'], { 'x.yaml': 'a: [1, 2\n' }).err, /^x\.yaml: document 1: invalid YAML: /);
    assert.equal(run(['/nonexistent/file.yaml']).code, 1);
    assert.equal(run([]).code, 2);
    assert.equal(run(['--bogus', 'x']).code, 2);
    assert.equal(run(['--sidecar-mode', 'sometimes', WORKLOADS]).code, 2);
  });

  void it('uses classic injection when told the cluster has no native sidecars', () => {
    const { code, out } = run(['--aws-region', 'eu-west-1', '--sidecar-mode', 'classic', WORKLOADS]);
    assert.equal(code, 0);
    const pod = podTemplate(docs(out)[2] ?? {});
    assert.equal(pod.spec.initContainers?.[0]?.name, 'sidekey-init');
  });
});
