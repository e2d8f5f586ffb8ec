// The predicate may refuse what its schema accepts (the schema then decides), never accept what the schema
// refuses. Checked on seeded random alterations of valid values, for the pod shape the webhook admits and for
// schemas that use each kind of check the predicate knows (lengths counted in code points, safe integers,
// literals, required unknowns, records with keys zod treats specially).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { podShapeSchema } from './pod-shape.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { validator } from './schema-predicate.ts';

const ODD_VALUES: readonly unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  '',
  'a',
  '😀',
  '😀😀',
  'ab',
  'abc',
  'x'.repeat(9),
  [],
  [1],
  [''],
  {},
  { name: 'x' },
  { name: '' },
  Object.create(null) as object,
];

type Json = unknown;

/** One random alteration somewhere in a deep copy of `value`: a key dropped, a value replaced, a key added. */
function alter(value: Json, next: () => number): Json {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const copy = structuredClone(value);
  const containers: (Record<string, unknown> | unknown[])[] = [];
  const walk = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    containers.push(node as Record<string, unknown> | unknown[]);
    for (const child of Object.values(node)) walk(child);
  };
  walk(copy);
  if (containers.length === 0 || next() < 0.05) return pick(ODD_VALUES);
  const target = pick(containers);
  const keys = Object.keys(target);
  const roll = next();
  if (Array.isArray(target)) {
    if (roll < 0.3 && target.length > 0) target.pop();
    else if (roll < 0.6) target.push(pick(ODD_VALUES));
    else if (target.length > 0) target[Math.floor(next() * target.length)] = pick(ODD_VALUES);
    return copy;
  }
  if (roll < 0.3 && keys.length > 0) Reflect.deleteProperty(target, pick(keys));
  else if (roll < 0.7 && keys.length > 0) target[pick(keys)] = pick(ODD_VALUES);
  else if (roll < 0.8)
    Object.defineProperty(target, pick(['constructor', '__proto__', 'toString']), {
      value: pick(ODD_VALUES),
      enumerable: true,
      configurable: true,
      writable: true,
    });
  else if (roll < 0.85) (target as Record<symbol, unknown>)[Symbol('s')] = 'x';
  else target[pick(['extra', 'name', 'minimum'])] = pick(ODD_VALUES);
  return copy;
}

function agreesWithSchema(schema: z.ZodType, valid: Json, seed: number, count: number): void {
  const validate = validator(schema);
  const next = seededRandom(seed);
  assert.equal(validate(valid), undefined, 'the starting value is valid');
  let refused = 0;
  for (let i = 0; i < count; i++) {
    const value = i % 3 === 2 ? alter(alter(valid, next), next) : alter(valid, next);
    const parsed = schema.safeParse(value);
    const problem = validate(value);
    if (!parsed.success) refused += 1;
    assert.equal(
      problem === undefined,
      parsed.success,
      `seed ${seed}, case ${i}: ${(JSON.stringify(value) as string | undefined)?.slice(0, 300) ?? 'undefined'}`,
    );
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      assert.equal(problem, `${issue?.path.map(String).join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
    }
  }
  assert.ok(refused > count / 10 && refused < count, `both outcomes occur (${refused} of ${count} refused)`);
}

const POD = {
  metadata: { name: 'app', namespace: 'team', annotations: { 'sidekey.io/inject': 'true', 'a/b': 'c' } },
  spec: {
    securityContext: { runAsUser: 1000, fsGroup: 2000, runAsNonRoot: true },
    containers: [
      {
        name: 'app',
        env: [{ name: 'A', value: 'b' }],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
        ports: [{ containerPort: 8080 }],
        securityContext: { runAsUser: 1001 },
      },
    ],
    initContainers: [{ name: 'init', restartPolicy: 'Always' }],
    volumes: [{ name: 'data', emptyDir: {} }],
    shareProcessNamespace: false,
  },
};

const KINDS = z.looseObject({
  kind: z.literal(['Pod', 'Job']),
  request: z.unknown(),
  label: z.string().min(2).max(8),
  short: z.string().max(3).optional(),
  count: z.int(),
  ratio: z.number(),
  port: z.number().int().optional(),
  labels: z.record(z.string(), z.string()),
  items: z.array(z.looseObject({ name: z.string().min(1) })).min(1),
  flag: z.boolean().optional(),
});
const KINDS_VALID = {
  kind: 'Pod',
  request: { any: 1 },
  label: 'ab😀',
  short: 'x',
  count: 3,
  ratio: 0.5,
  port: 80,
  labels: { a: 'b' },
  items: [{ name: 'n' }],
  flag: true,
};

void describe('schema predicate', () => {
  void it('accepts exactly what the pod-shape schema accepts, and names the same first issue', () => {
    agreesWithSchema(podShapeSchema, POD, 1, 6000);
  });

  void it('agrees with zod on literals, required unknowns, code-point lengths, safe integers and records', () => {
    agreesWithSchema(KINDS, KINDS_VALID, 2, 6000);
  });
});
