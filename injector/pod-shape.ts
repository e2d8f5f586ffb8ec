// The parts of a Pod the injector reads, checked structurally on untrusted input. Everything else passes
// through untouched: the injector never round-trips a pod through typed models, it patches what it adds.
import { z } from 'zod';

const envVarSchema = z.looseObject({ name: z.string() });
const volumeMountSchema = z.looseObject({ name: z.string(), mountPath: z.string() });
const securityContextSchema = z.looseObject({
  runAsUser: z.number().int().optional(),
  runAsGroup: z.number().int().optional(),
  runAsNonRoot: z.boolean().optional(),
});
const containerSchema = z.looseObject({
  name: z.string().min(1),
  env: z.array(envVarSchema).optional(),
  volumeMounts: z.array(volumeMountSchema).optional(),
  securityContext: securityContextSchema.optional(),
  ports: z.array(z.looseObject({ containerPort: z.number().int() })).optional(),
  restartPolicy: z.string().optional(),
});
const podSecurityContextSchema = securityContextSchema.extend({ fsGroup: z.number().int().optional() });

export const podShapeSchema = z.looseObject({
  metadata: z
    .looseObject({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  spec: z.looseObject({
    containers: z.array(containerSchema).min(1),
    initContainers: z.array(containerSchema).optional(),
    volumes: z.array(z.looseObject({ name: z.string() })).optional(),
    securityContext: podSecurityContextSchema.optional(),
    shareProcessNamespace: z.boolean().optional(),
    automountServiceAccountToken: z.boolean().optional(),
    restartPolicy: z.string().optional(),
  }),
});

export type Pod = z.infer<typeof podShapeSchema>;
export type PodSpec = Pod['spec'];
export type Container = PodSpec['containers'][number];
export type EnvVar = NonNullable<Container['env']>[number];
export type VolumeMount = NonNullable<Container['volumeMounts']>[number];

export type ShapeResult = { readonly ok: true; readonly pod: Pod } | { readonly ok: false; readonly problem: string };

type Accepts = (value: unknown) => boolean;

/**
 * A plain predicate true only of values the schema accepts, for objects, arrays, strings, booleans and numbers;
 * other schemas, and checks other than an array's minimum length, it hands to the schema itself. Parsing a
 * 10 KB pod with the loose object schemas copied every key of it, about a sixth of the handler's time; the
 * predicate copies nothing, and a value it refuses still goes to the schema, which names the issue.
 */
function acceptor(schema: z.ZodType): Accepts {
  const checks = schema._zod.def.checks ?? [];
  if (schema instanceof z.ZodOptional) {
    const inner = acceptor(schema.unwrap() as z.ZodType);
    return (value) => value === undefined || inner(value);
  }
  if (schema instanceof z.ZodArray && checks.every((c) => c._zod.def.check === 'min_length')) {
    const element = acceptor(schema.element as z.ZodType);
    const minimum = Math.max(0, ...checks.map((c) => (c as z.core.$ZodCheckMinLength)._zod.def.minimum));
    return (value) => {
      if (!Array.isArray(value) || value.length < minimum) return false;
      for (let i = 0; i < value.length; i++) if (!element(value[i])) return false;
      return true;
    };
  }
  const { catchall } = schema._zod.def as { catchall?: unknown };
  if (schema instanceof z.ZodObject && checks.length === 0 && (catchall === undefined || catchall instanceof z.ZodUnknown)) {
    const fields = Object.entries(schema.shape as Record<string, z.ZodType>).map(([key, field]) => [key, acceptor(field)] as const);
    return (value) =>
      typeof value === 'object' && value !== null && !Array.isArray(value) && fields.every(([key, accepts]) => accepts((value as Record<string, unknown>)[key]));
  }
  if (checks.length === 0) {
    if (schema instanceof z.ZodString) return (value) => typeof value === 'string';
    if (schema instanceof z.ZodBoolean) return (value) => typeof value === 'boolean';
    if (schema instanceof z.ZodNumber) return (value) => Number.isFinite(value);
  }
  return (value) => schema.safeParse(value).success;
}

const acceptsPod = acceptor(podShapeSchema);

/** Checks the shape of the fields the injector reads; the problem names the field, never its value. */
export function checkPodShape(input: unknown): ShapeResult {
  const parsed = acceptsPod(input) ? undefined : podShapeSchema.safeParse(input);
  if (parsed === undefined || parsed.success) return { ok: true, pod: input as Pod };
  const issue = parsed.error.issues[0];
  const where = issue === undefined ? '(root)' : issue.path.join('.') || '(root)';
  return { ok: false, problem: `the object is not a valid pod: ${where}: ${issue?.message ?? 'invalid'}` };
}
