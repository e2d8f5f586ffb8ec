// Configuration from a file, env vars and flags (later wins), for `sidekey webhook` and `sidekey render`, so
// both see exactly the same settings. Each flag `--vault-addr` has the env equivalent `SIDEKEY_VAULT_ADDR`.
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { ParseResult } from '../injector/agent-config.ts';
import type { FlagSpec } from '../injector/providers/declaration.ts';
import { PROVIDER_FLAGS } from '../injector/providers/index.ts';
import { parseWebhookConfig } from './config.ts';
import type { WebhookConfig } from './config.ts';

type Setting = FlagSpec;

/** Flags shared by `webhook` and `render`: each maps to a field of the webhook configuration; providers add theirs. */
export const SETTINGS: Readonly<Record<string, Setting>> = {
  ...PROVIDER_FLAGS,
  'agent-image': { path: ['image'], kind: 'image', help: 'agent image REPOSITORY:TAG (or @sha256:...)' },
  'agent-cpu': { path: ['resources', 'cpu'], kind: 'string', help: 'agent CPU request' },
  'agent-memory': { path: ['resources', 'memory'], kind: 'string', help: 'agent memory request (limit: twice)' },
  'default-mode': { path: ['defaultMode'], kind: 'string', help: 'sidecar|init-only' },
  'sidecar-mode': { path: ['sidecarMode'], kind: 'string', help: 'auto|native' },
  'mount-path': { path: ['mountPath'], kind: 'string', help: 'default mount path in app containers' },
  'tmpfs-size': { path: ['tmpfsSize'], kind: 'string', help: 'default memory volume size' },
  'min-refresh': { path: ['minRefresh'], kind: 'string', help: 'shortest refresh allowed' },
  port: { path: ['port'], kind: 'int', help: 'HTTPS port' },
  'metrics-port': { path: ['metricsPort'], kind: 'int', help: 'metrics HTTP port' },
  'tls-cert': { path: ['tlsCert'], kind: 'string', help: 'PEM certificate file' },
  'tls-key': { path: ['tlsKey'], kind: 'string', help: 'PEM key file' },
  namespace: { path: ['namespace'], kind: 'string', help: 'own namespace (default env POD_NAMESPACE)' },
  'exclude-namespaces': { path: ['excludedNamespaces'], kind: 'list', help: 'comma list of namespaces never injected' },
  'log-level': { path: ['logLevel'], kind: 'string', help: 'pino log level' },
  'drain-seconds': { path: ['drainSeconds'], kind: 'int', help: 'serve this long after SIGTERM' },
};

export const PARSE_OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(Object.keys(SETTINGS).map((k) => [k, { type: 'string' }])),
} as const satisfies NonNullable<Parameters<typeof parseArgs>[0]>['options'];

export function settingsUsage(): string {
  return Object.entries(SETTINGS)
    .map(([flag, s]) => `  --${flag.padEnd(20)} ${s.help} (env SIDEKEY_${flag.toUpperCase().replaceAll('-', '_')})`)
    .join('\n');
}

function convert(kind: Setting['kind'], text: string): unknown {
  switch (kind) {
    case 'int':
      return /^\d+$/.test(text) ? Number(text) : text;
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'image': {
      const at = text.indexOf('@');
      if (at > 0) return { repository: text.slice(0, at), tag: text.slice(at + 1) };
      const colon = text.lastIndexOf(':');
      return colon > text.lastIndexOf('/')
        ? { repository: text.slice(0, colon), tag: text.slice(colon + 1) }
        : { repository: text };
    }
    case 'string':
      return text;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    const old = target[head];
    target[head] = isObject(old) && isObject(value) ? { ...old, ...value } : value;
    return;
  }
  const child = target[head];
  const next = isObject(child) ? child : {};
  target[head] = next;
  setPath(next, rest, value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface ConfigSources {
  /** Flag values from parseArgs (strings by flag name). */
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => string;
}

/** Builds the configuration: defaults < --config FILE (YAML or JSON) < SIDEKEY_* env < flags. */
export function loadConfig(sources: ConfigSources): ParseResult<Readonly<WebhookConfig>> {
  const { flags, env } = sources;
  const file = flags['config'] ?? env['SIDEKEY_CONFIG_FILE'];
  let raw: Record<string, unknown> = {};
  if (typeof file === 'string') {
    try {
      const parsed: unknown = parseYaml(sources.readFile(file));
      if (parsed !== null && parsed !== undefined && !isObject(parsed))
        return { ok: false, error: `${file}: the configuration must be a mapping` };
      raw = isObject(parsed) ? parsed : {};
    } catch (err) {
      return { ok: false, error: `${file}: ${(err as Error).message.split('\n')[0] ?? 'unreadable'}` };
    }
  }
  if (env['POD_NAMESPACE'] !== undefined && raw['namespace'] === undefined) raw['namespace'] = env['POD_NAMESPACE'];
  for (const [flag, setting] of Object.entries(SETTINGS)) {
    const fromEnv = env[`SIDEKEY_${flag.toUpperCase().replaceAll('-', '_')}`];
    const fromFlag = flags[flag];
    const text = typeof fromFlag === 'string' ? fromFlag : fromEnv;
    if (text !== undefined) setPath(raw, setting.path, convert(setting.kind, text));
  }
  return parseWebhookConfig(raw);
}
