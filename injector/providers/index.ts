// The injector's provider registry: every provider's declaration, in the order of PROVIDERS. The reference
// rules, settings schema, flags, annotation table, README tables and the agent's wiring all derive from it.
import type { AnnotationSpec } from '../annotation-spec.ts';
import type { FlagSpec, IdentityWiring, ProviderDocs } from './declaration.ts';
import { PROVIDERS } from './names.ts';
import type { Provider } from './names.ts';
import { REGISTRY } from './registry.generated.ts';

export type Declaration = (typeof REGISTRY)[Provider];

/** The declarations in the order of PROVIDERS (which messages, tables and the schema follow). */
export const DECLARATIONS: readonly Declaration[] = PROVIDERS.map((p) => REGISTRY[p]);

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** The webhook settings every provider adds, as one zod shape (spread into the injection settings). */
export const PROVIDER_SETTINGS = Object.assign({}, ...DECLARATIONS.map((d) => d.settings)) as UnionToIntersection<
  Declaration['settings']
>;

export const PROVIDER_FLAGS: Readonly<Record<string, FlagSpec>> = Object.assign(
  {},
  ...DECLARATIONS.map((d) => d.flags),
) as Record<string, FlagSpec>;

export const PROVIDER_ANNOTATIONS: readonly AnnotationSpec[] = DECLARATIONS.flatMap((d) => d.annotations);

/** The providers' parts of the docs, in provider order. */
export const PROVIDER_DOCS: readonly ProviderDocs[] = DECLARATIONS.map((d) => d.docs);

export const PROVIDER_RESERVED_VOLUMES: readonly string[] = DECLARATIONS.flatMap((d) => d.reservedVolumes);

/** The identity env and volumes of every provider, merged. */
export const IDENTITY_WIRING: IdentityWiring = {
  env: DECLARATIONS.flatMap((d) => d.identity?.env ?? []),
  markerEnv: DECLARATIONS.flatMap((d) => d.identity?.markerEnv ?? []),
  tokenFileEnv: DECLARATIONS.flatMap((d) => d.identity?.tokenFileEnv ?? []),
  volumes: DECLARATIONS.flatMap((d) => d.identity?.volumes ?? []),
  regionEnv: DECLARATIONS.flatMap((d) => d.identity?.regionEnv ?? []),
};

export function declarationOf(name: Provider): Declaration {
  return REGISTRY[name];
}
