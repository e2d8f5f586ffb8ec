// The parts of a Pod the injector reads, checked structurally on untrusted input. Everything else passes
// through untouched: the injector never round-trips a pod through typed models, it patches what it adds.
import { z } from 'zod';
import { validator } from './schema-predicate.ts';

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
      labels: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  spec: z.looseObject({
    containers: z.array(containerSchema).min(1),
    initContainers: z.array(containerSchema).optional(),
    volumes: z.array(z.looseObject({ name: z.string() })).optional(),
    securityContext: podSecurityContextSchema.optional(),
    shareProcessNamespace: z.boolean().optional(),
    hostPID: z.boolean().optional(),
    hostNetwork: z.boolean().optional(),
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

const validatePod = validator(podShapeSchema);

/**
 * Checks the shape of the fields the injector reads; the problem names the field, never its value. A field
 * set to null (Helm renders `volumeMounts:` with nothing under it so) is absent to the API server, and so to
 * the injector: a pod that fails only for its nulls is read without them.
 */
export function checkPodShape(input: unknown): ShapeResult {
  const issue = validatePod(input);
  if (issue === undefined) return { ok: true, pod: input as Pod };
  const withoutNulls = dropNulls(input);
  if (validatePod(withoutNulls) === undefined) return { ok: true, pod: withoutNulls as Pod };
  return { ok: false, problem: `the object is not a valid pod: ${issue}` };
}

/** A copy without the object members that are null (array items stay: the API server refuses a null one). */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, dropNulls(v)]),
  );
}
