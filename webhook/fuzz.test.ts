// Fuzz: 10,000 deterministic (seeded) random and mutated reviews and annotation values through the handler,
// plus a slice of them over real HTTPS. Zero crashes; every answer is a well-formed review or a 4xx; a patch
// always applies to its pod; a denial never echoes a template body or URL credentials.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { applyPatch } from 'rfc6902';
import { assertWellFormed, tableConfig } from '../test/support/admission-cases.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { createTestCa } from '../test/support/test-ca.ts';
import type { TestCa } from '../test/support/test-ca.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES, FILE_KEYS } from '../injector/annotations.ts';
import { createMetrics } from './metrics.ts';
import { reviewAdmission, reviewContext } from './review.ts';
import { startWebhook } from './server.ts';
import { WORKLOAD_ACTIONS, WORKLOAD_RESULTS, reviewWorkload } from './workload-review.ts';
import type { RunningWebhook } from './server.ts';

const CANARY = 'SECRETCANARY';
const ITERATIONS = 10_000;
const OVER_HTTPS = 400;

const TRICKY = [
  '',
  ' ',
  '..',
  '../..',
  '/',
  '//',
  '.hidden',
  'a/b',
  '~',
  '~1',
  '%2e%2e',
  '\u0000',
  '\n',
  '\u202e',
  '💥',
  'true',
  'false',
  'null',
  '0',
  '-1',
  '1e9',
  '0755',
  '0400',
  'signal:',
  'signal:SIGKILL',
  'signal:HUP',
  'http:',
  'http://127.0.0.1:1/x',
  `http://u:${CANARY}@127.0.0.1/`,
  'http://169.254.169.254/',
  'aws:',
  'aws:#',
  'aws:@',
  'aws:a#b@c',
  'vault:a/../b',
  'vault:secret/x@7',
  'file:x',
  'gcp:x',
  `{{ .${CANARY} | x }}`,
  `${CANARY} {{`,
  '{{ . }}',
  '{{ .a }}{{ .b }}',
  '1h',
  '0s',
  '10',
  '1h 30m',
  '999999999h',
  'sidecar',
  'init-only',
  'classic',
  'Sidecar',
  '/var/run/secrets/sidekey',
  '/etc',
  '/proc/self',
  '/var/run/secrets/kubernetes.io',
  'x'.repeat(300),
  'eu-west-1',
  'kubernetes',
  'approle',
];

class Fuzzer {
  readonly rnd: () => number;

  constructor(rnd: () => number) {
    this.rnd = rnd;
  }

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  text(canary = true): string {
    if (this.rnd() < 0.6) return this.pick(canary ? TRICKY : TRICKY.filter((t) => !t.includes(CANARY)));
    const alphabet = 'abcXYZ019:/#@.-_~{} \\"\'%\u00e9\u0000';
    return Array.from({ length: this.int(40) }, () => alphabet[this.int(alphabet.length)] ?? '').join('');
  }

  value(depth = 0): unknown {
    const kind = this.int(depth > 2 ? 5 : 7);
    switch (kind) {
      case 0:
        return this.text();
      case 1:
        return this.int(3) === 0 ? -this.int(1e6) : this.int(70_000);
      case 2:
        return null;
      case 3:
        return this.rnd() < 0.5;
      case 4:
        return 1.5;
      case 5:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: this.int(4) }, () => [this.text(), this.value(depth + 1)]));
    }
  }

  annotationKey(): string {
    const known = Object.keys(EXAMPLES).filter((k) => !FILE_KEYS.includes(k));
    if (this.rnd() < 0.5)
      return `sidekey.io/${this.pick(FILE_KEYS)}-${this.rnd() < 0.7 ? this.pick(['db', 'a.b', 'DB']) : this.text(false)}`;
    return `sidekey.io/${this.rnd() < 0.8 ? this.pick(known) : this.text(false)}`;
  }

  pod(): Record<string, unknown> {
    const annotations: Record<string, string> = {
      'sidekey.io/inject': this.rnd() < 0.9 ? 'true' : this.text(),
      'sidekey.io/secret-db': this.pick(['aws:prod/db#password', 'vault:secret/db', 'file:db', this.text()]),
    };
    for (let i = this.int(6); i > 0; i -= 1) {
      const key = this.annotationKey();
      annotations[key] = key.startsWith('sidekey.io/template-') && this.rnd() < 0.5 ? `${CANARY}{{ .x }}` : this.text();
    }
    const container = (name: string): Record<string, unknown> => ({
      name,
      image: 'app',
      ...(this.rnd() < 0.3 ? { securityContext: { runAsUser: this.pick([0, 1000, 65532]) } } : {}),
      ...(this.rnd() < 0.3
        ? { volumeMounts: [{ name: 'v', mountPath: this.pick(['/data', '/var/run/secrets/sidekey', '/etc/x']) }] }
        : {}),
      ...(this.rnd() < 0.2
        ? {
            env: [
              { name: 'AWS_REGION', value: 'eu-west-1' },
              { name: 'AWS_ROLE_ARN', value: 'arn:x' },
            ],
          }
        : {}),
      ...(this.rnd() < 0.2 ? { ports: [{ containerPort: 8099 }] } : {}),
    });
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: 'f-', annotations },
      spec: {
        ...(this.rnd() < 0.3 ? { securityContext: { runAsUser: this.pick([1000, 0]), fsGroup: 2000 } } : {}),
        ...(this.rnd() < 0.3 ? { initContainers: [container('init')] } : {}),
        containers: [container('app'), ...(this.rnd() < 0.3 ? [container('side')] : [])],
        ...(this.rnd() < 0.3 ? { volumes: [{ name: 'v', emptyDir: {} }] } : {}),
      },
    };
  }

  /** Replaces, deletes or adds something somewhere in `root`. */
  mutate(root: unknown): void {
    let node = root;
    for (let depth = 0; depth < 6; depth += 1) {
      if (node === null || typeof node !== 'object') return;
      const keys = Object.keys(node);
      if (keys.length === 0 || this.rnd() < 0.25) break;
      const key = this.pick(keys);
      const child = (node as Record<string, unknown>)[key];
      if (child === null || typeof child !== 'object' || this.rnd() < 0.3) {
        const action = this.int(3);
        if (action === 0) Reflect.deleteProperty(node, key);
        else (node as Record<string, unknown>)[key] = this.value();
        return;
      }
      node = child;
    }
    if (node !== null && typeof node === 'object' && !Array.isArray(node))
      (node as Record<string, unknown>)[this.text()] = this.value();
  }

  review(i: number): string {
    return this.finish({
      uid: `fuzz-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: this.pick(['shop', 'kube-system', 'sidekey-system', 'legacy', 'default']),
      operation: this.rnd() < 0.9 ? 'CREATE' : this.pick(['UPDATE', 'DELETE', 'CONNECT']),
      dryRun: this.rnd() < 0.1,
      object: this.pod(),
    });
  }

  /** A review of a workload whose template is a fuzzed pod (the validating endpoints). */
  workloadReview(i: number): string {
    const [group, kind] = this.pick([
      ['apps', 'Deployment'],
      ['apps', 'StatefulSet'],
      ['apps', 'DaemonSet'],
      ['apps', 'ReplicaSet'],
      ['batch', 'Job'],
      ['batch', 'CronJob'],
      ['', 'Pod'],
    ] as const);
    const workload = (): unknown => {
      const template = this.pod();
      return {
        apiVersion: `${group}/v1`,
        kind,
        metadata: { name: 'w' },
        spec: kind === 'CronJob' ? { schedule: '@daily', jobTemplate: { spec: { template } } } : { template },
      };
    };
    const operation = this.rnd() < 0.8 ? 'CREATE' : this.pick(['UPDATE', 'DELETE']);
    return this.finish({
      uid: `fuzz-${i}`,
      kind: { group, version: 'v1', kind },
      namespace: this.pick(['shop', 'kube-system', 'default']),
      operation,
      object: workload(),
      ...(operation === 'UPDATE' ? { oldObject: workload() } : {}),
    });
  }

  /** The review around `request`, mutated a few times, sometimes cut short or replaced by another value. */
  private finish(request: Record<string, unknown>): string {
    const review: Record<string, unknown> = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request,
    };
    for (let n = this.int(3); n > 0; n -= 1) this.mutate(review);
    const text = JSON.stringify(review);
    const shape = this.int(20);
    if (shape === 0) return text.slice(0, this.int(text.length));
    if (shape === 1) return JSON.stringify(this.value());
    return text;
  }
}

function check(text: string, status: number, body: unknown): void {
  let uid: string | undefined;
  try {
    const parsed = JSON.parse(text) as { request?: { uid?: unknown } } | null;
    uid = typeof parsed?.request?.uid === 'string' ? parsed.request.uid : undefined;
  } catch {
    uid = undefined;
  }
  assertWellFormed(status, body, status === 200 ? uid : undefined);
  if (status !== 200) return;
  const response = (body as { response: { allowed: boolean; patch?: string; warnings?: string[] } }).response;
  if (!response.allowed || response.warnings?.[0]?.includes('will be refused') === true)
    assert.ok(
      !JSON.stringify(body).includes(CANARY),
      `a denial never echoes template bodies or credentials: ${JSON.stringify(body).slice(0, 3000)}`,
    );
  if (response.patch !== undefined) {
    const object = (JSON.parse(text) as { request: { object: unknown } }).request.object;
    const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Parameters<typeof applyPatch>[1];
    assert.deepEqual(
      applyPatch(structuredClone(object), ops).filter((e) => e !== null),
      [],
    );
  }
}

void describe('fuzz', () => {
  const ctx = reviewContext(tableConfig({ fileStore: '/srv/store', vault: { addr: 'https://vault:8200', role: 'r' } }));

  void it(`${ITERATIONS} random and mutated reviews: no crash, well-formed answers`, () => {
    const fuzz = new Fuzzer(seededRandom(20261127));
    const results = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i += 1) {
      const text = fuzz.review(i);
      const outcome = reviewAdmission(text, ctx);
      check(text, outcome.status, outcome.body);
      results.set(outcome.result, (results.get(outcome.result) ?? 0) + 1);
    }
    for (const result of ['injected', 'denied', 'skipped', 'invalid'])
      assert.ok((results.get(result) ?? 0) > 50, `enough ${result}: ${JSON.stringify([...results])}`);
  });

  void it(`${ITERATIONS / 5} random and mutated workload reviews, refused and warned: no crash, well-formed answers`, () => {
    const fuzz = new Fuzzer(seededRandom(20261129));
    const results = new Map<string, number>();
    for (let i = 0; i < ITERATIONS / 5; i += 1) {
      const text = fuzz.workloadReview(i);
      for (const action of WORKLOAD_ACTIONS) {
        const outcome = reviewWorkload(text, ctx, action);
        check(text, outcome.status, outcome.body);
        results.set(outcome.result, (results.get(outcome.result) ?? 0) + 1);
      }
    }
    for (const result of WORKLOAD_RESULTS)
      assert.ok((results.get(result) ?? 0) > 20, `enough ${result}: ${JSON.stringify([...results])}`);
  });

  void describe('over HTTPS', () => {
    let ca: TestCa;
    let dir: string;
    let webhook: RunningWebhook;
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    before(async () => {
      ca = createTestCa();
      dir = mkdtempSync(join(tmpdir(), 'sidekey-fuzz-'));
      const leaf = ca.issue('fuzz');
      writeFileSync(join(dir, 'tls.crt'), leaf.cert);
      writeFileSync(join(dir, 'tls.key'), leaf.key);
      const config = tableConfig({
        port: 0,
        metricsPort: 0,
        tlsCert: join(dir, 'tls.crt'),
        tlsKey: join(dir, 'tls.key'),
        drainSeconds: 0,
      });
      webhook = await startWebhook({
        config,
        log: pino({ level: 'silent' }),
        metrics: createMetrics({ defaultMetrics: false }),
        host: '127.0.0.1',
      });
    });
    after(async () => {
      agent.destroy();
      await webhook.close();
      rmSync(dir, { recursive: true, force: true });
      ca.dispose();
    });

    void it(`${OVER_HTTPS} of them through the server: never a 5xx`, async () => {
      const fuzz = new Fuzzer(seededRandom(7));
      for (let i = 0; i < OVER_HTTPS; i += 1) {
        const text = fuzz.review(i);
        const answer = await new Promise<{ status: number; body: unknown }>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port: webhook.port,
              path: '/mutate',
              method: 'POST',
              ca: ca.caCert,
              agent,
              headers: { 'content-type': 'application/json' },
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (d: Buffer) => chunks.push(d));
              res.on('end', () => {
                resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
              });
            },
          );
          req.on('error', reject);
          req.end(text);
        });
        check(text, answer.status, answer.body);
      }
    });
  });
});
