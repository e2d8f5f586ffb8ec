// The secret stores the demo runs against: the embedded `file` store (no external service, the default),
// a real OpenBao dev server (KV v2, kubernetes auth) or a real moto server (AWS Secrets Manager). Each holds
// one secret, demo/db = { username, password }, and can rotate the password.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { renderTemplate } from '../agent/template.ts';
import type { WebhookConfigInput } from '../webhook/config.ts';
import { defined } from '../injector/defined.ts';

export const BACKENDS = ['file', 'vault', 'aws'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface DemoBackend {
  readonly name: BackendName;
  /** What a person reads: which store, where. */
  readonly description: string;
  /** How a change reaches the agent. */
  readonly refreshNote: string;
  /** The pod's secret annotations (without the prefix). */
  readonly annotations: Readonly<Record<string, string>>;
  /** Webhook settings this store needs. */
  readonly settings: WebhookConfigInput;
  /** Env and host paths of the agent "image" (endpoint overrides, the file store directory). */
  readonly agentEnv: Readonly<Record<string, string>>;
  readonly agentBinds: readonly string[];
  /** Host ports the pod must reach (the store's server). */
  readonly services: readonly number[];
  /** The projected service-account token, for stores that authenticate the pod (Vault kubernetes auth). */
  readonly serviceAccountToken?: () => string;
  /** Current value, so the demo can show fingerprints; the demo never prints it. */
  current(): { username: string; password: string };
  rotate(): Promise<void>;
  stop(): Promise<void>;
}

const TEMPLATE = 'postgres://{{ .username }}:{{ .password }}@db.demo.svc:5432/app';

function newPassword(): string {
  return randomBytes(12).toString('base64url');
}

function annotations(reference: string, refresh?: string): Record<string, string> {
  return {
    'secret-password': `${reference}#password`,
    'secret-db-url': reference,
    'template-db-url': TEMPLATE,
    ...defined({ refresh }),
  };
}

function fileBackend(): DemoBackend {
  const store = mkdtempSync(join(tmpdir(), 'sidekey-demo-store-'));
  // The agent runs as the app's UID (1000), so the store must be readable by it; demo values only.
  chmodSync(store, 0o755);
  mkdirSync(join(store, 'demo'), { mode: 0o755 });
  let value = { username: 'demo', password: newPassword() };
  const write = (): void => {
    const tmp = join(store, 'demo', '.db.yaml.tmp');
    writeFileSync(tmp, stringify(value), { mode: 0o644 });
    renameSync(tmp, join(store, 'demo', 'db.yaml'));
  };
  write();
  return {
    name: 'file',
    description: `embedded file store in ${store} (demo/db.yaml)`,
    refreshNote: 'the agent watches the store, so a change is picked up within a second',
    annotations: annotations('file:demo/db'),
    settings: { fileStore: store },
    agentEnv: {},
    agentBinds: [store],
    services: [],
    current: () => value,
    rotate(): Promise<void> {
      value = { ...value, password: newPassword() };
      write();
      return Promise.resolve();
    },
    stop(): Promise<void> {
      rmSync(store, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

async function vaultBackend(): Promise<DemoBackend> {
  const { READ_ALL_POLICY, startOpenBao } = await import('../devkit/backends/openbao.ts');
  const bao = await startOpenBao();
  try {
    let value = { username: 'demo', password: newPassword() };
    await bao.api('POST', 'secret/data/demo/db', { data: value });
    await bao.writePolicy('demo-read', READ_ALL_POLICY);
    const k8s = await bao.setupKubernetes('demo', ['demo-read'], 'default', 'demo');
    return {
      name: 'vault',
      description: `OpenBao dev server at ${bao.addr} (KV v2 secret/demo/db, kubernetes auth)`,
      refreshNote: 'the agent polls every 10s (sidekey.io/refresh, the agent floor)',
      annotations: { ...annotations('vault:secret/demo/db', '10s'), 'vault-role': 'demo' },
      settings: { vault: { addr: bao.addr, role: 'demo' }, minRefresh: '10s' },
      agentEnv: {},
      agentBinds: [],
      services: [Number(new URL(bao.addr).port)],
      serviceAccountToken: () => k8s.token,
      current: () => value,
      async rotate(): Promise<void> {
        value = { ...value, password: newPassword() };
        await bao.api('POST', 'secret/data/demo/db', { data: value });
      },
      stop: () => bao.stop(),
    };
  } catch (error) {
    await bao.stop();
    throw error;
  }
}

async function awsBackend(): Promise<DemoBackend> {
  const { startMoto } = await import('../devkit/backends/moto.ts');
  const { CreateSecretCommand, PutSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const moto = await startMoto();
  try {
    let value = { username: 'demo', password: newPassword() };
    await moto.admin.send(new CreateSecretCommand({ Name: 'demo/db', SecretString: JSON.stringify(value) }));
    return {
      name: 'aws',
      description: `moto (AWS Secrets Manager) at ${moto.endpoint}, secret demo/db`,
      refreshNote: 'the agent polls every 10s (sidekey.io/refresh, the agent floor) and compares VersionId',
      annotations: annotations('aws:demo/db', '10s'),
      settings: { aws: { region: moto.region }, minRefresh: '10s' },
      agentEnv: moto.env,
      agentBinds: [],
      services: [moto.port],
      current: () => value,
      async rotate(): Promise<void> {
        value = { ...value, password: newPassword() };
        await moto.admin.send(new PutSecretValueCommand({ SecretId: 'demo/db', SecretString: JSON.stringify(value) }));
      },
      stop: () => moto.stop(),
    };
  } catch (error) {
    await moto.stop();
    throw error;
  }
}

export function startBackend(name: BackendName): Promise<DemoBackend> {
  switch (name) {
    case 'file':
      return Promise.resolve(fileBackend());
    case 'vault':
      return vaultBackend();
    case 'aws':
      return awsBackend();
  }
}

/** The rendered template, as the app would see it in file db-url (the demo compares fingerprints only). */
export function renderedUrl(value: { username: string; password: string }): string {
  return renderTemplate(TEMPLATE, (field) => (field === 'username' || field === 'password' ? value[field] : undefined));
}
