// Each provider's part of the agent: for every provider some file uses, its declaration turns the pod's
// annotations, identity and the webhook's defaults into agent configuration, env and volumes, or refuses
// combinations that could never work, with the fix. Providers nothing uses only warn about their annotations.
import { annotationProblem } from './annotations.ts';
import type { JsonObject } from './patch.ts';
import type { Problem } from './problems.ts';
import type { ProblemDraft, ProviderWiring, ResolveInput } from './providers/declaration.ts';
import { DECLARATIONS } from './providers/index.ts';
import type { InjectionSettings } from './settings.ts';

/** Every used provider's wiring, merged in provider order: config sections, and the agent's env, mounts and volumes. */
export interface Backends extends Required<ProviderWiring> {
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
}

/** The pod's annotations and identity, and the webhook's settings: what each provider resolves from. */
export type BackendInput = Omit<ResolveInput<InjectionSettings>, 'firstFile'>;

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
