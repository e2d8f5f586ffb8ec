// Each provider's part of the agent: for every provider some file uses, its declaration turns the pod's
// annotations, identity and the webhook's defaults into agent configuration, env and volumes, or refuses
// combinations that could never work, with the fix. Providers nothing uses only warn about their annotations.
import type { AgentConfig } from './agent-config.ts';
import type { AnnotationRequest } from './annotations.ts';
import { annotationProblem } from './annotations.ts';
import type { PodIdentity } from './identity.ts';
import type { JsonObject } from './patch.ts';
import type { Problem } from './problems.ts';
import type { ProblemDraft } from './providers/declaration.ts';
import { DECLARATIONS } from './providers/index.ts';
import type { InjectionSettings } from './settings.ts';

export interface Backends {
  /** The agent configuration's provider sections (aws, vault). */
  readonly config: Partial<Pick<AgentConfig, 'aws' | 'vault'>>;
  /** Env, mounts and volumes the agent container needs for its providers, in provider order. */
  readonly env: readonly JsonObject[];
  readonly mounts: readonly JsonObject[];
  readonly volumes: readonly JsonObject[];
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
}

export interface BackendInput {
  readonly request: AnnotationRequest;
  readonly identity: PodIdentity;
  readonly settings: InjectionSettings;
  /** The pod sets automountServiceAccountToken: false. */
  readonly noServiceAccountToken: boolean;
}

export function resolveBackends(input: BackendInput): Backends {
  const drafts: ProblemDraft[] = [];
  const warnings: string[] = [];
  const out = { problems: drafts, warnings };
  let config: Backends['config'] = {};
  const env: JsonObject[] = [];
  const mounts: JsonObject[] = [];
  const volumes: JsonObject[] = [];
  for (const declaration of DECLARATIONS) {
    const firstFile = input.request.files.find((f) => f.ref.provider === declaration.name)?.name;
    if (firstFile === undefined) {
      const warning = declaration.unused(input.request);
      if (warning !== undefined) warnings.push(warning);
      continue;
    }
    const wiring = declaration.resolve({ ...input, firstFile }, out);
    config = { ...config, ...wiring?.config };
    env.push(...(wiring?.env ?? []));
    mounts.push(...(wiring?.mounts ?? []));
    volumes.push(...(wiring?.volumes ?? []));
  }
  const problems = drafts.map((p) => annotationProblem(p.code, p.annotation, p.message));
  return { config, env, mounts, volumes, problems, warnings };
}
