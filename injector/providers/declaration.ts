// What a provider declares to the injector side (webhook, render, docs): its reference rules, its webhook
// settings and flags, its annotations, the identity it copies to the agent, and how a pod's annotations and
// the webhook's settings become its part of the agent (configuration, env, volumes). A declaration is
// providers/<name>/injector/<name>.ts; the agent's fetch code is apart, in providers/<name>/agent/, so neither
// bundle carries the other's code.
import type * as z from 'zod';
import type { AgentConfig } from '../agent-config.ts';
import type { AnnotationRequest } from '../annotations.ts';
import type { AnnotationSpec } from '../annotation-spec.ts';
import type { PodIdentity } from '../identity.ts';
import type { JsonObject } from '../patch.ts';
import type { ProblemCode } from '../problems.ts';
import type { SecretReference } from '../reference.ts';
import type { Provider } from './names.ts';

/** A `sidekey webhook` / `sidekey render` flag and the field of the webhook configuration it sets. */
export interface FlagSpec {
  readonly path: readonly string[];
  readonly kind: 'string' | 'int' | 'list' | 'image';
  readonly help: string;
}

/** Env vars and volumes of the pod's own identity (set by other webhooks) that the agent gets copies of. */
export interface IdentityWiring {
  /** The env vars copied from the identity source container. */
  readonly env: readonly string[];
  /** Env vars that mark a container as the identity source. */
  readonly markerEnv: readonly string[];
  /** Env vars naming token files, whose directories' mounts are copied too. */
  readonly tokenFileEnv: readonly string[];
  /** Volumes copied by name. */
  readonly volumes: readonly string[];
  /** Env vars whose literal value is the pod's region. */
  readonly regionEnv: readonly string[];
}

/** A problem found while resolving; the caller adds the annotation's example. */
export interface ProblemDraft {
  readonly code: ProblemCode;
  readonly annotation: string;
  readonly message: string;
}

export interface ResolveInput<Settings> {
  readonly request: AnnotationRequest;
  readonly identity: PodIdentity;
  readonly settings: Settings;
  /** The pod sets automountServiceAccountToken: false. */
  readonly noServiceAccountToken: boolean;
  /** The first file using this provider; resolve is only called when there is one. */
  readonly firstFile: string;
}

export interface ResolveOutput {
  readonly problems: ProblemDraft[];
  readonly warnings: string[];
}

/** The provider's part of the agent: its configuration section and what its container needs besides. */
export interface ProviderWiring {
  readonly config?: Partial<Pick<AgentConfig, 'aws' | 'vault'>>;
  readonly env?: readonly JsonObject[];
  readonly mounts?: readonly JsonObject[];
  readonly volumes?: readonly JsonObject[];
}

/** The provider's parts of the README's annotation reference and troubleshooting fixes. */
export interface ProviderDocs {
  /** A valid reference, shown in the fix for SK_BAD_REFERENCE. */
  readonly referenceExample?: string;
  /** A valid reference with ?parameters (when it takes them), shown when they are refused. */
  readonly parametersExample?: string;
  /** Said of its references in the `secret-<name>` row, e.g. which paths are refused. */
  readonly referenceNote?: string;
  /** What its annotations look like when right, for SK_BAD_BACKEND_SETTING. */
  readonly annotationHints: readonly string[];
  /** The settings a pod may lack for it, for SK_MISSING_SETTING. */
  readonly missingSettings: string;
}

export interface ProviderDeclaration<Shape extends z.ZodRawShape = z.ZodRawShape> {
  readonly name: Provider;
  /** Whether empty, "." and ".." path segments are refused (everything but names that may hold them, such as ARNs). */
  readonly strictSegments: boolean;
  /** Why a reference's @version is refused, if it is. */
  readonly versionProblem: (version: string) => string | undefined;
  /**
   * Why a reference's `?parameters` (given as pairs) are refused, if they are; absent: the provider takes none.
   * The reference's path, #field and @version come along, since parameters make a different kind of reference.
   */
  readonly parameters?: (ref: SecretReference, params: ReadonlyMap<string, string>) => string | undefined;
  /** The webhook settings it adds (top-level fields of the injection settings). */
  readonly settings: Shape;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly annotations: readonly AnnotationSpec[];
  readonly docs: ProviderDocs;
  readonly identity?: IdentityWiring;
  /** Volume names a pod may not use because this provider's agent mounts them. */
  readonly reservedVolumes: readonly string[];
  /** Its annotations were given but no secret uses it: the warning, or undefined when there are none. */
  readonly unused: (request: AnnotationRequest) => string | undefined;
  readonly resolve: (
    input: ResolveInput<z.infer<z.ZodObject<Shape>>>,
    out: ResolveOutput,
  ) => ProviderWiring | undefined;
}

/** Checks a declaration against the interface while keeping its settings shape in the type. */
export function declareProvider<Shape extends z.ZodRawShape>(
  declaration: ProviderDeclaration<Shape>,
): ProviderDeclaration<Shape> {
  return declaration;
}
