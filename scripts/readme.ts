// Generates the README's annotation reference and troubleshooting tables from the code: the annotation table
// of injector/annotations.ts (with each provider's rows), the admission
// problem codes and the agent's error codes. The tables below are typed by those codes, so a new code
// without a documented fix fails the typecheck, and scripts/readme.test.ts fails when README.md drifts.
//   node scripts/readme.ts          check (exit 1 on drift)
//   node scripts/readme.ts --write  rewrite the generated sections of README.md
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ProviderErrorCode } from '../agent/provider.ts';
import type { RenderErrorCode } from '../agent/render-error.ts';
import { ANNOTATIONS } from '../injector/annotations.ts';
import type { AnnotationSpec } from '../injector/annotation-spec.ts';
import type { ProviderDocs } from '../injector/providers/declaration.ts';
import { PROVIDER_DOCS } from '../injector/providers/index.ts';
import { ANNOTATION_PREFIX } from '../injector/constants.ts';
import type { ProblemCode } from '../injector/problems.ts';

export const README = join(resolve(import.meta.dirname, '..'), 'README.md');

/** What every provider says for one fix, comma-joined in provider order. */
const listed = (part: (docs: ProviderDocs) => readonly string[]): string => PROVIDER_DOCS.flatMap(part).join(', ');

/** Every admission problem code with its fix. */
export const ADMISSION_FIXES: Readonly<Record<ProblemCode, string>> = {
  SK_HOST_NAMESPACE:
    "Drop `hostNetwork` (the agent's port would be a node port) or, with `hostPID`, use `reload: http:<loopback URL>` (a signal reload needs shareProcessNamespace, which the API server refuses with hostPID).",
  SK_TOO_MANY:
    'The pod is larger than one admission reads (more than 20,000 JSON values, about a 240 KB pod), or has more problems, files or mounted containers than one admission checks (20 problems listed, 500 files, 64 containers with the mount): fix what is listed, stay within the limits and submit again.',
  SK_CONFIG_TOO_LARGE:
    'Shorten the templates or split the secrets over fewer, smaller files: the agent configuration travels in one environment variable, which Linux caps at 128 KiB.',
  SK_NOT_A_POD:
    'The object, or the pod template of a workload, is not a valid pod (the message names the field): fix that field; from the webhook itself, check the MutatingWebhookConfiguration rules (pods, CREATE).',
  SK_BAD_INJECT: 'Set `sidekey.io/inject` to `"true"` (or `"false"`); other values are refused.',
  SK_BAD_STATUS:
    'Remove `sidekey.io/status` from your manifest, with the `sidekey-agent`/`sidekey-init` containers and `sidekey-*` volumes of an earlier injection: only the webhook writes them, and it refuses a status that does not match what it injects for the annotations.',
  SK_UNKNOWN_ANNOTATION: 'Fix the typo: only the keys of the annotation reference exist under `sidekey.io/`.',
  SK_NO_SECRETS: 'Add at least one `sidekey.io/secret-<name>` annotation, or drop `sidekey.io/inject`.',
  SK_BAD_FILE_NAME:
    'Use a file name of one path segment of `[A-Za-z0-9_.-]`, not starting with `.` (e.g. `secret-db-password`).',
  SK_DUPLICATE_FILE: 'Two annotations produce the same file (also case-insensitively): rename one.',
  SK_ORPHAN_ANNOTATION: 'A `template-`, `format-` or `refresh-<name>` has no `secret-<name>`: add it or fix the name.',
  SK_BAD_REFERENCE: `Write the reference as \`<provider>:<path>[#<field>][@<version>]\`, e.g. ${listed((d) => (d.referenceExample === undefined ? [] : [`\`${d.referenceExample}\``]))}; one with parameters as \`<provider>:<path>?<parameters>[#<field>]\`, e.g. ${listed((d) => (d.parametersExample === undefined ? [] : [`\`${d.parametersExample}\``]))}.`,
  SK_BAD_TEMPLATE:
    'Templates allow only `{{ .field }}` and `{{ . }}`, up to 64 KiB; drop `#field` from the reference when the template names fields.',
  SK_BAD_FORMAT:
    'Use `raw`, `json`, `yaml`, `env` or `properties`; `env`/`properties` need a whole secret (no `#field`); a template replaces the format.',
  SK_BAD_DURATION:
    "Use a Go-style duration (`90s`, `15m`, `1h30m`) between the webhook's floor (`minRefresh`) and 24 days.",
  SK_BAD_MODE:
    'Use `sidecar` or `init-only`. `classic` was removed: Sidekey needs native sidecars (Kubernetes 1.29+; the chart requires 1.30).',
  SK_BAD_RELOAD: 'Use `none`, `signal:SIGHUP` (or another non-stopping signal) or `http://127.0.0.1:<port>/<path>`.',
  SK_UNKNOWN_CONTAINER: '`containers` / `reload-container` must name containers of the pod (comma list, no repeats).',
  SK_BAD_MOUNT_PATH:
    'Use an absolute path that is not a system directory and not `/run/secrets` itself, e.g. `/var/run/secrets/sidekey`.',
  SK_MOUNT_CONFLICT:
    'The mount path overlaps an existing volumeMount of a target container: choose another `mount-path`.',
  SK_BAD_FILE_MODE: 'Use an octal mode with read access and no execute bits: `0400`, `0440` or `0444`.',
  SK_UID_REQUIRED:
    "`reload: signal:*` needs the app's UID: set `runAsUser` on the pod or the container (a process may signal only its own UID without CAP_KILL).",
  SK_BAD_LOG_LEVEL:
    'Set `sidekey.io/log-level` to `error`, `warn`, `info` or `debug`, or drop it (the agent logs at `info`).',
  SK_BAD_QUANTITY:
    'Use a Kubernetes quantity: `agent-cpu: 10m`, `agent-memory: 48Mi` (at least 32Mi), `tmpfs-size: 1Mi`.',
  SK_BAD_BACKEND_SETTING: `Fix the backend annotation: ${listed((d) => d.annotationHints)}.`,
  SK_MISSING_SETTING: `The backend needs a setting that is neither annotated nor configured in the webhook (${listed((d) => [d.missingSettings])}): add the annotation the message names.`,
  SK_RESERVED_NAME:
    'Rename your container or volume: `sidekey-agent`, `sidekey-init` and `sidekey-*` volumes belong to Sidekey.',
};

/** Every agent error code (fetch and render) with its fix. */
export const AGENT_FIXES: Readonly<Record<ProviderErrorCode | RenderErrorCode, string>> = {
  AUTH_FAILED:
    "The agent could not log in: check the Vault role binding (service account and namespace), the auth mount path, or the pod's AWS identity (IRSA role trust policy). It retries with backoff and keeps the last good files.",
  PERMISSION_DENIED:
    'Logged in but not allowed: grant read on the path (Vault policy) or `secretsmanager:GetSecretValue`/`BatchGetSecretValue` (IAM).',
  NOT_FOUND: 'The secret or field path does not exist: check the reference (KV v2 paths are written without `data/`).',
  THROTTLED: 'The backend throttles: raise `sidekey.io/refresh`; the agent backs off with jitter meanwhile.',
  TLS_VERIFY_FAILED:
    "The agent does not trust the backend's certificate (the log names OpenSSL's code, e.g. `SELF_SIGNED_CERT_IN_CHAIN`): for a Vault behind a private CA set the webhook's `vault.caCert` or `vault.caFrom`, or `sidekey.io/vault-ca` on the pod; a name mismatch means the address is not among the certificate's names. It retries and keeps the last good files.",
  UNAVAILABLE:
    "The backend is unreachable: network policy, DNS, address or proxy (the webhook's `proxy` setting). The app keeps the last good files; `/readyz` fails once a secret is older than its staleness threshold; recovery is automatic.",
  BAD_RESPONSE:
    "The backend answered something unexpected (not JSON, not a mapping, a binary where text is needed): check the stored secret's shape.",
  FIELD_MISSING:
    "The `#field` or a template's `{{ .field }}` is not in the secret: fix the name or add the field to the secret.",
  LEASE_EXPIRED:
    'A dynamic lease ran out before renewal (e.g. the agent was stopped too long): a new credential is issued and the app reloaded.',
  ISSUE_REFUSED:
    "A Vault PKI role refused to issue the certificate (the log names the role and Vault's reason, e.g. a common name outside `allowed_domains`, an IP SAN the role does not allow): fix the reference's parameters or the role. The agent keeps the last good certificate and retries with backoff.",
  CONFIG:
    "The agent's configuration or environment is unusable (e.g. the file store is not mounted): re-create the pod after fixing the webhook configuration.",
  NOT_AN_OBJECT:
    '`json`/`yaml`/`env`/`properties` or a template need a secret with fields; select one with `#field` and use `raw`.',
  BAD_KEY: 'A field name cannot be written as an `env`/`properties` key: use `json` or a template.',
  BAD_VALUE:
    "A value the `env` format cannot write so that sh, Node's parseEnv/--env-file, dotenv and python-dotenv all read it back unchanged (a line break; `'` or `\\` together with `\"`, `$`, `` ` `` or `\\`): use `json`, `properties`, `raw` or a template.",
  TEMPLATE_SYNTAX:
    'The template is malformed (admission checks the same grammar; this appears only with a hand-written SIDEKEY_CONFIG).',
  TOO_LARGE:
    'The rendered files exceed the output bound, or the tmpfs cannot hold the old and the new set side by side during a rotation (the log names the size needed): raise `sidekey.io/tmpfs-size` or select fewer fields.',
};

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The README's annotation reference, by key: the rows of the annotation table (the test checks both directions). */
export const ANNOTATION_DOCS: Readonly<Record<string, Pick<AnnotationSpec, 'doc' | 'default'>>> = Object.fromEntries(
  ANNOTATIONS.map((a) => [a.key, a]),
);

export function annotationsSection(): string {
  const rows = ANNOTATIONS.map((a) => {
    const name = a.read === 'file' ? `${a.key}-<name>` : a.key;
    const exampleKey = a.read === 'file' ? `${a.key}-db` : a.key;
    return [
      `\`${ANNOTATION_PREFIX}${name}\``,
      a.doc,
      a.default,
      `\`${ANNOTATION_PREFIX}${exampleKey}: "${a.example}"\``,
    ];
  });
  return table(['annotation', 'meaning', 'default', 'example'], rows);
}

export function troubleshootingSection(): string {
  const admission = table(
    ['admission code', 'fix'],
    Object.entries(ADMISSION_FIXES).map(([code, fix]) => [`\`${code}\``, fix]),
  );
  const agent = table(
    ['agent code', 'fix'],
    Object.entries(AGENT_FIXES).map(([code, fix]) => [`\`${code}\``, fix]),
  );
  return `${admission}\n\n${agent}`;
}

const SECTIONS: Readonly<Record<string, () => string>> = {
  annotations: annotationsSection,
  troubleshooting: troubleshootingSection,
};

/** README text with every generated section replaced by what the code says now. */
export function regenerate(readme: string): string {
  let text = readme;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const start = `<!-- generated:${name} (node scripts/readme.ts --write) -->`;
    const end = `<!-- end:${name} -->`;
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md lacks the markers of the generated section "${name}"`);
    text = `${text.slice(0, from + start.length)}\n${render()}\n${text.slice(to)}`;
  }
  return text;
}

if (import.meta.main) {
  const current = readFileSync(README, 'utf8');
  const next = regenerate(current);
  if (process.argv.includes('--write')) writeFileSync(README, next);
  else if (next !== current) {
    process.stderr.write('README.md differs from the code: run "node scripts/readme.ts --write"\n');
    process.exitCode = 1;
  }
}
