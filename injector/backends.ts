// Backend settings for the agent config: annotations first, then what the pod's identity says (AWS region),
// then the webhook's defaults. Refuses combinations that could never work, with the fix.
import { AWS_REGION } from './agent-config.ts';
import type { AgentConfig } from './agent-config.ts';
import type { AnnotationRequest } from './annotations.ts';
import { annotationProblem } from './annotations.ts';
import { ANNOTATION_PREFIX } from './constants.ts';
import type { PodIdentity } from './identity.ts';
import { SA_TOKEN_FILE } from './identity.ts';
import { PROBLEM_CODES } from './problems.ts';
import type { Problem } from './problems.ts';
import { formatReference, vaultSystemMount } from './reference.ts';
import type { Provider } from './reference.ts';
import type { InjectionSettings } from './settings.ts';
import { VAULT_CA_FILE } from './vault-ca.ts';
import type { CaObject } from './vault-ca.ts';

/** Where the approle Secret is mounted in agent containers (never in app containers). */
export const APPROLE_DIR = '/sidekey/vault-approle';
export const APPROLE_VOLUME = 'sidekey-vault-approle';

export interface Backends {
  readonly aws?: NonNullable<AgentConfig['aws']>;
  readonly vault?: NonNullable<AgentConfig['vault']>;
  /** The Secret to mount for approle auth. */
  readonly approleSecret?: string;
  /** The ConfigMap or Secret key mounted at VAULT_CA_FILE (sidekey.io/vault-ca, else the webhook's vault.caFrom). */
  readonly vaultCa?: CaObject;
  /** The file store path handed to the agent in SIDEKEY_FILE_STORE. */
  readonly fileStore?: string;
  /** The volume that holds the file store, mounted at fileStore. */
  readonly fileStoreVolume?: NonNullable<InjectionSettings['fileStoreVolume']>;
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

function missing(annotation: string, message: string): Problem {
  return annotationProblem(PROBLEM_CODES.missingSetting, annotation, message);
}

function firstFileUsing(request: AnnotationRequest, provider: Provider): string | undefined {
  return request.files.find((f) => f.ref.provider === provider)?.name;
}

export function resolveBackends(input: BackendInput): Backends {
  const { request, settings } = input;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const aws = resolveAws(input, problems, warnings);
  const vault = resolveVault(input, problems, warnings);
  const fileUser = firstFileUsing(request, 'file');
  if (fileUser !== undefined && settings.fileStore === undefined) {
    problems.push(missing(`secret-${fileUser}`, 'the file: provider is not enabled on this webhook (its fileStore setting is empty); it is for local runs and tests, use aws: or vault:'));
  }
  return {
    ...(aws === undefined ? {} : { aws }),
    ...(vault === undefined ? {} : { vault: vault.settings }),
    ...(vault?.approleSecret === undefined ? {} : { approleSecret: vault.approleSecret }),
    ...(vault?.ca === undefined ? {} : { vaultCa: vault.ca }),
    ...(fileUser === undefined || settings.fileStore === undefined ? {} : { fileStore: settings.fileStore }),
    ...(fileUser === undefined || settings.fileStoreVolume === undefined ? {} : { fileStoreVolume: settings.fileStoreVolume }),
    problems,
    warnings,
  };
}

function resolveAws(input: BackendInput, problems: Problem[], warnings: string[]): Backends['aws'] {
  const { request, identity, settings } = input;
  if (firstFileUsing(request, 'aws') === undefined) {
    if (request.awsRegion !== undefined) warnings.push(`${ANNOTATION_PREFIX}aws-region is ignored: no secret uses aws:`);
    return undefined;
  }
  const podRegion = identity.region !== undefined && AWS_REGION.test(identity.region) ? identity.region : undefined;
  const region = request.awsRegion ?? podRegion ?? settings.aws.region;
  if (region === undefined) {
    problems.push(missing('aws-region', 'no AWS region: set this annotation, AWS_REGION on the app container, or aws.region in the webhook configuration'));
    return undefined;
  }
  return { region };
}

type VaultResolution = { settings: NonNullable<AgentConfig['vault']>; approleSecret?: string; ca?: CaObject };

interface Trust {
  readonly settings: Pick<NonNullable<AgentConfig['vault']>, 'caFile' | 'caCert'>;
  /** The object mounted at VAULT_CA_FILE. */
  readonly ca?: CaObject;
}

/** The CA object a pod's agent mounts: its own annotation first, then the webhook's vault.caFrom. */
function caObjectOf(asked: AnnotationRequest['vault'], settings: InjectionSettings): CaObject | undefined {
  if (asked.ca !== undefined) return asked.ca;
  const from = settings.vault.caFrom;
  if (from?.configMap !== undefined) return { kind: 'configMap', name: from.configMap, key: from.key };
  if (from?.secret !== undefined) return { kind: 'secret', name: from.secret, key: from.key };
  return undefined;
}

/** The CA an https Vault's agent trusts: a mounted object (annotation, vault.caFrom), else vault.caCert, else the public roots. */
function resolveTrust(addr: string, asked: AnnotationRequest['vault'], settings: InjectionSettings, warnings: string[]): Trust {
  if (new URL(addr).protocol !== 'https:') {
    if (asked.ca !== undefined) warnings.push(`${ANNOTATION_PREFIX}vault-ca is ignored: the Vault address ${addr.slice(0, 80)} is not https`);
    return { settings: {} };
  }
  const ca = caObjectOf(asked, settings);
  if (ca !== undefined) return { settings: { caFile: VAULT_CA_FILE }, ca };
  return { settings: settings.vault.caCert === undefined ? {} : { caCert: settings.vault.caCert } };
}

function resolveVault(input: BackendInput, problems: Problem[], warnings: string[]): VaultResolution | undefined {
  const { request, settings } = input;
  const asked = request.vault;
  if (firstFileUsing(request, 'vault') === undefined) {
    if (Object.keys(asked).length > 0) warnings.push(`${ANNOTATION_PREFIX}vault-* annotations are ignored: no secret uses vault:`);
    return undefined;
  }
  const addr = asked.addr ?? settings.vault.addr;
  if (asked.addr !== undefined) checkPodVaultAddr(asked.addr, settings, problems);
  checkVaultPaths(request, settings, problems);
  warnKvDataPaths(request, warnings);
  const auth = asked.auth ?? settings.vault.auth;
  const role = asked.role ?? settings.vault.role;
  const namespace = asked.namespace ?? settings.vault.namespace;
  const before = problems.length;
  if (addr === undefined) problems.push(missing('vault-addr', 'no Vault address: set this annotation or vault.addr in the webhook configuration'));
  checkVaultAuth({ input, auth, role, problems });
  if (problems.length > before || addr === undefined) return undefined;
  const files = auth === 'approle'
    ? { roleIdFile: `${APPROLE_DIR}/role-id`, secretIdFile: `${APPROLE_DIR}/secret-id` }
    : { tokenFile: SA_TOKEN_FILE };
  const trust = resolveTrust(addr, asked, settings, warnings);
  return {
    settings: {
      addr,
      auth,
      // Each method's own mount by default: an approle pod logs in at auth/approle, not auth/kubernetes.
      authPath: asked.authPath ?? settings.vault.authPath ?? auth,
      ...(role === undefined ? {} : { role }),
      ...(namespace === undefined ? {} : { namespace }),
      ...files,
      ...trust.settings,
    },
    ...(auth === 'approle' && asked.approleSecret !== undefined ? { approleSecret: asked.approleSecret } : {}),
    ...(trust.ca === undefined ? {} : { ca: trust.ca }),
  };
}

/**
 * The vault-k8s habit `vault:secret/data/payments/db`: Sidekey finds a KV v2 mount itself and adds `data/`, so
 * on KV v2 that path reads secret/data/data/payments/db. A KV v1 mount may hold a `data/` key, so only a warning.
 */
function warnKvDataPaths(request: AnnotationRequest, warnings: string[]): void {
  for (const file of request.files) {
    const [mount, second, ...rest] = file.ref.path.split('/');
    if (file.ref.provider !== 'vault' || second !== 'data' || rest.length === 0) continue;
    const fixed = formatReference({ ...file.ref, path: [mount, ...rest].join('/') });
    warnings.push(`${ANNOTATION_PREFIX}secret-${file.name}: "${formatReference(file.ref)}" has "data/" in its path: KV v2 paths are written without it (Sidekey adds it), so on KV v2 this reads ${mount ?? ''}/data/data/${rest.join('/')}; write ${ANNOTATION_PREFIX}secret-${file.name}: "${fixed}" (keep "data/" only for a KV v1 key named so)`);
  }
}

/** A pod's own Vault address: https unless the operator allows http, and one the operator listed when there is a list. */
function checkPodVaultAddr(addr: string, settings: InjectionSettings, problems: Problem[]): void {
  const url = new URL(addr);
  if (url.protocol === 'http:' && !settings.vault.allowHttp) {
    problems.push(annotationProblem(PROBLEM_CODES.badBackend, 'vault-addr', 'must be https: over http the agent would send the pod\'s service-account token in clear text (the webhook\'s vault.allowHttp is off)'));
    return;
  }
  const allowed = [...settings.vault.allowedAddrs, ...(settings.vault.addr === undefined ? [] : [settings.vault.addr])];
  if (settings.vault.allowedAddrs.length > 0 && !allowed.some((a) => new URL(a).origin === url.origin)) {
    problems.push(annotationProblem(PROBLEM_CODES.badBackend, 'vault-addr', `is not one of the Vault addresses this webhook allows (vault.addr and vault.allowedAddrs, ${allowed.length} in all): drop the annotation to use the default, or ask the operator to list it`));
  }
}

/**
 * References that can reach a Vault system backend (reference.ts), and a pod's namespace that puts one before every
 * path, refused unless the operator allows them.
 */
function checkVaultPaths(request: AnnotationRequest, settings: InjectionSettings, problems: Problem[]): void {
  if (settings.vault.allowSystemPaths) return;
  const fix = 'or ask the operator for the webhook setting vault.allowSystemPaths';
  const namespaceMount = vaultSystemMount(`${request.vault.namespace ?? ''}/`);
  if (namespaceMount !== undefined) {
    problems.push(annotationProblem(PROBLEM_CODES.badBackend, 'vault-namespace',
      `has a "${namespaceMount}" segment, so every read would go to that namespace's ${namespaceMount}/ backend; name the namespace alone, ${fix}`));
  }
  for (const file of request.files) {
    const mount = file.ref.provider === 'vault' ? vaultSystemMount(file.ref.path) : undefined;
    if (mount === undefined) continue;
    problems.push(annotationProblem(PROBLEM_CODES.badReference, `secret-${file.name}`,
      `can reach Vault's ${mount}/ backend, which answers with the agent's own credentials or the server's state, not app secrets (auth/token/lookup-self returns the agent's token): `
      + `a "${mount}" segment anywhere but last counts, since a namespace may come before it (team-a/${mount}/…); read from a secrets engine such as secret/ or database/ (a key may be named ${mount} as the last segment), ${fix}`));
  }
}

interface AuthCheck {
  readonly input: BackendInput;
  readonly auth: string;
  readonly role: string | undefined;
  readonly problems: Problem[];
}

function checkVaultAuth({ input, auth, role, problems }: AuthCheck): void {
  if (auth === 'approle') {
    if (input.request.vault.approleSecret === undefined) {
      problems.push(missing('vault-approle-secret', 'approle auth needs a Secret with keys role-id and secret-id, mounted into the agent only'));
    }
    return;
  }
  if (role === undefined) problems.push(missing('vault-role', `${auth} auth needs a Vault role: set this annotation or vault.role in the webhook configuration`));
  if (input.noServiceAccountToken) {
    problems.push(missing('vault-auth', `${auth} auth reads the service-account token, but the pod sets automountServiceAccountToken: false; remove that or use approle`));
  }
  // No warning when the kube-api-access mount is missing: a pod template and render's offline pod never have
  // it (the API server's ServiceAccount admission adds it at creation, before this webhook sees the pod), and
  // render, lint and the webhook must give the same answer.
}
