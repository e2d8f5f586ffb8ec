// Table-driven over injector/fixtures/*.yaml: every injected pod is a valid Pod (official schema), the patch
// is add-only and turns the input into the mutated pod, a second admission changes nothing, the agent config
// round-trips through the agent's own parser, and injected containers meet Pod Security "restricted".
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Pod as PodModel } from 'kubernetes-models/v1';
import { applyPatch } from 'rfc6902';
import { parse } from 'yaml';
import { parseAgentConfig } from './agent-config.ts';
import { AGENT_CONTAINER, CONFIG_ENV } from './constants.ts';
import { mutatePod } from './mutate.ts';
import type { MutateResult } from './mutate.ts';
import { formatProblem } from './problems.ts';
import { injectionSettingsSchema } from './settings.ts';

interface Expect {
  readonly pod?: unknown;
  readonly config?: unknown;
  readonly absent?: readonly string[];
  readonly warnings?: readonly string[];
  readonly noWarnings?: boolean;
  readonly skipped?: string;
  readonly codes?: readonly string[];
  readonly count?: number;
  readonly messages?: readonly string[];
  readonly never?: readonly string[];
}

interface Case {
  readonly name: string;
  readonly settings?: unknown;
  readonly pod: unknown;
  readonly expect: Expect;
}

const FIXTURES = new URL('./fixtures/', import.meta.url);
const RESTRICTED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

export function loadCases(): { file: string; cases: Case[] }[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.yaml'))
    .map((file) => ({ file, cases: parse(readFileSync(new URL(file, FIXTURES), 'utf8')) as Case[] }));
}

export function run(c: Case): MutateResult {
  const settings = injectionSettingsSchema.parse(c.settings ?? {});
  const input = structuredClone(c.pod);
  const result = mutatePod(input, { settings });
  assert.deepEqual(input, c.pod, 'the input pod is never modified');
  return result;
}

/** `actual` contains `expected`: objects by key, arrays by index (expected may be shorter). */
function assertSubset(actual: unknown, expected: unknown, path = ''): void {
  if (expected === null || typeof expected !== 'object') {
    assert.deepEqual(actual, expected, `at ${path || '/'}`);
    return;
  }
  assert.ok(actual !== null && typeof actual === 'object', `at ${path || '/'}: expected an object or array`);
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `at ${path}: expected an array`);
    assert.ok(
      actual.length >= expected.length,
      `at ${path}: expected at least ${expected.length} items, got ${actual.length}`,
    );
  }
  for (const [key, value] of Object.entries(expected)) {
    assertSubset((actual as Record<string, unknown>)[key], value, `${path}/${key}`);
  }
}

function pointer(obj: unknown, path: string): unknown {
  return path
    .split('/')
    .slice(1)
    .reduce<unknown>(
      (o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
      obj,
    );
}

function assertRestricted(container: Record<string, unknown>): void {
  const sc = container['securityContext'] as Record<string, unknown>;
  assert.equal(sc['allowPrivilegeEscalation'], false);
  assert.equal(sc['runAsNonRoot'], true);
  assert.ok(typeof sc['runAsUser'] === 'number' && sc['runAsUser'] > 0);
  assert.deepEqual(sc['capabilities'], { drop: ['ALL'] });
  assert.deepEqual(sc['seccompProfile'], { type: 'RuntimeDefault' });
  assert.equal(sc['readOnlyRootFilesystem'], true);
  assert.equal(sc['privileged'], false);
}

function checkInjected(c: Case, result: Extract<MutateResult, { kind: 'injected' }>): void {
  const input = c.pod as Record<string, unknown>;
  new PodModel(structuredClone(result.pod) as ConstructorParameters<typeof PodModel>[0]).validate();
  for (const op of result.patch) {
    if (op.op === 'replace') {
      assert.equal(op.path, '/spec/shareProcessNamespace', 'the only replace turns on the shared process namespace');
      continue;
    }
    assert.equal(op.op, 'add', `only adds: ${op.path}`);
    const last = op.path.split('/').pop() ?? '';
    if (!/^(\d+|-)$/.test(last)) assert.equal(pointer(input, op.path), undefined, `add never overwrites ${op.path}`);
  }
  const patched = structuredClone(input);
  const errors = applyPatch(patched, structuredClone(result.patch) as Parameters<typeof applyPatch>[1]);
  assert.deepEqual(
    errors.filter((e) => e !== null),
    [],
  );
  assert.deepEqual(patched, result.pod, 'the patch turns the input into the mutated pod');
  const again = mutatePod(structuredClone(result.pod), { settings: injectionSettingsSchema.parse(c.settings ?? {}) });
  assert.equal(again.kind, 'skipped', 'a second admission is a no-op');
  const spec = result.pod.spec;
  const added = [...(spec.initContainers ?? []), ...spec.containers].filter((x) => x.name.startsWith('sidekey-'));
  assert.ok(added.length > 0);
  for (const container of added) {
    assertRestricted(container);
    const env = (container.env ?? []).find((e) => e.name === CONFIG_ENV);
    const parsed = parseAgentConfig(String(env?.['value']));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    assert.deepEqual(parsed.value, result.configs[container.name]);
  }
  for (const volume of spec.volumes ?? []) {
    assert.ok(
      Object.keys(volume).some((k) => RESTRICTED_VOLUMES.includes(k)),
      `volume ${volume.name} is allowed under restricted`,
    );
  }
  assert.match(result.pod.metadata?.annotations?.['sidekey.io/status'] ?? '', /^injected [0-9a-f]{16}$/);
  assert.equal(
    result.pod.metadata?.labels?.['sidekey.io/injected'],
    'true',
    'the label a PodMonitor selects agents by',
  );
  const { expect } = c;
  if (expect.pod !== undefined) assertSubset(result.pod, expect.pod);
  if (expect.config !== undefined) assertSubset(result.configs[AGENT_CONTAINER], expect.config);
  for (const path of expect.absent ?? []) assert.equal(pointer(result.pod, path), undefined, `${path} is absent`);
}

function checkWarnings(expect: Expect, warnings: readonly string[]): void {
  if (expect.noWarnings === true) assert.deepEqual(warnings, []);
  for (const w of expect.warnings ?? [])
    assert.ok(
      warnings.some((x) => x.includes(w)),
      `a warning mentions ${w}: ${warnings.join(' | ')}`,
    );
}

for (const { file, cases } of loadCases()) {
  void describe(`fixtures/${file}`, () => {
    for (const c of cases) {
      void it(c.name, () => {
        const result = run(c);
        const { expect } = c;
        if (expect.skipped !== undefined) {
          assert.deepEqual(result, { kind: 'skipped', reason: expect.skipped });
          return;
        }
        if (expect.codes !== undefined) {
          assert.equal(result.kind, 'denied', JSON.stringify(result).slice(0, 400));
          const text = result.problems.map(formatProblem);
          assert.deepEqual(
            [...new Set(result.problems.map((p) => p.code))].sort(),
            [...expect.codes].sort(),
            text.join('\n'),
          );
          if (expect.count !== undefined) assert.equal(result.problems.length, expect.count, text.join('\n'));
          for (const m of expect.messages ?? [])
            assert.ok(
              text.some((t) => t.includes(m)),
              `a problem says ${m}:\n${text.join('\n')}`,
            );
          for (const n of expect.never ?? []) assert.ok(!JSON.stringify(result).includes(n), `never echoes ${n}`);
          for (const t of text) assert.match(t, /^(annotation "sidekey\.io\/[^"]+"|pod): /);
          return;
        }
        assert.equal(result.kind, 'injected', JSON.stringify(result).slice(0, 2000));
        checkInjected(c, result);
        checkWarnings(expect, result.warnings);
      });
    }
  });
}

void describe('agent configuration size', () => {
  void it('refuses a pod whose agent config would not fit in one environment variable', () => {
    const template = `{{ .password }}${'x'.repeat(60_000)}`;
    const annotations: Record<string, string> = { 'sidekey.io/inject': 'true' };
    for (const name of ['a', 'b', 'c']) {
      annotations[`sidekey.io/secret-${name}`] = 'vault:secret/app/db';
      annotations[`sidekey.io/template-${name}`] = template;
    }
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'big', annotations },
      spec: { containers: [{ name: 'app', image: 'app' }] },
    };
    const settings = injectionSettingsSchema.parse({ vault: { addr: 'https://vault.example:8200', role: 'app' } });
    const result = mutatePod(pod, { settings });
    if (result.kind !== 'denied') return assert.fail(`expected a denial, got ${result.kind}`);
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['SK_CONFIG_TOO_LARGE'],
    );
    const message = formatProblem(result.problems[0]!);
    assert.match(message, /128 KiB/);
    assert.doesNotMatch(message, /xxxx/);
  });
});

void describe('setting annotations', () => {
  void it('refuses a bad value with the code of its kind, naming the annotation', () => {
    const codes = {
      'agent-cpu': 'SK_BAD_QUANTITY',
      'agent-memory': 'SK_BAD_QUANTITY',
      'tmpfs-size': 'SK_BAD_QUANTITY',
      'aws-region': 'SK_BAD_BACKEND_SETTING',
      'vault-role': 'SK_BAD_BACKEND_SETTING',
    };
    const settings = injectionSettingsSchema.parse({});
    for (const [key, code] of Object.entries(codes)) {
      const annotations = {
        'sidekey.io/inject': 'true',
        'sidekey.io/secret-db': 'aws:prod/db',
        [`sidekey.io/${key}`]: 'not valid!',
      };
      const pod = { metadata: { name: 'a', annotations }, spec: { containers: [{ name: 'app', image: 'app' }] } };
      const result = mutatePod(pod, { settings });
      if (result.kind !== 'denied') return assert.fail(`${key}: expected a denial, got ${result.kind}`);
      assert.deepEqual(
        result.problems.map((p) => [p.annotation, p.code]),
        [[key, code]],
      );
      assert.match(result.problems[0]?.example ?? '', new RegExp(`^sidekey\\.io/${key}: "`));
    }
  });
});
