// Just enough of a Kubernetes API server for helm's server-side dry runs (`helm install --dry-run=server`):
// version and discovery for the kinds the chart renders, an empty release history, 404 for every object,
// and GET of the Secrets a test stores (what the chart's `lookup` reads). No cluster runs on these machines;
// this stands in for one only to let helm reach the code paths that need one. Plain HTTP on 127.0.0.1.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';

interface Resource {
  readonly name: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

const GROUPS: Readonly<Record<string, readonly Resource[]>> = {
  v1: [
    { name: 'configmaps', kind: 'ConfigMap', namespaced: true },
    { name: 'secrets', kind: 'Secret', namespaced: true },
    { name: 'services', kind: 'Service', namespaced: true },
    { name: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
    { name: 'namespaces', kind: 'Namespace', namespaced: false },
  ],
  'apps/v1': [{ name: 'deployments', kind: 'Deployment', namespaced: true }],
  'policy/v1': [{ name: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', namespaced: true }],
  'networking.k8s.io/v1': [{ name: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true }],
  'admissionregistration.k8s.io/v1': [
    { name: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
    { name: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  ],
  'cert-manager.io/v1': [
    { name: 'certificates', kind: 'Certificate', namespaced: true },
    { name: 'issuers', kind: 'Issuer', namespaced: true },
  ],
};

function resourceList(groupVersion: string, resources: readonly Resource[]): unknown {
  const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: resources.map((r) => ({ ...r, singularName: '', verbs })),
  };
}

function groupList(): unknown {
  const groups = Object.keys(GROUPS)
    .filter((gv) => gv.includes('/'))
    .map((gv) => {
      const [name, version] = gv.split('/') as [string, string];
      const preferred = { groupVersion: gv, version };
      return { name, versions: [preferred], preferredVersion: preferred };
    });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

const notFound = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  reason: 'NotFound',
  code: 404,
  message: 'not found',
};

export interface FakeKubeApi {
  /** A kubeconfig file pointing at the server. */
  readonly kubeconfig: string;
  /** Stores an object that GET /api/v1/namespaces/<ns>/secrets/<name> returns. */
  putSecret(secret: { metadata: { name: string; namespace: string } }): void;
  close(): Promise<void>;
}

/**
 * Starts the server on a free port and writes its kubeconfig to `kubeconfigPath`. It answers /version with
 * 1.`minor`: by default 30, the oldest Kubernetes the chart supports.
 */
export async function startFakeKubeApi(kubeconfigPath: string, minor = '30'): Promise<FakeKubeApi> {
  const secrets = new Map<string, unknown>();
  const answer = (method: string | undefined, path: string): [number, unknown] => {
    if (method !== 'GET') return [405, { ...notFound, reason: 'MethodNotAllowed', code: 405 }];
    if (path === '/version') return [200, { major: '1', minor, gitVersion: `v1.${minor}.0`, platform: 'linux/amd64' }];
    if (path === '/api') return [200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] }];
    if (path === '/apis') return [200, groupList()];
    const gv = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))$/.exec(path);
    const groupVersion = gv?.[1] ?? gv?.[2];
    const resources = groupVersion === undefined ? undefined : GROUPS[groupVersion];
    if (groupVersion !== undefined && resources !== undefined) return [200, resourceList(groupVersion, resources)];
    // helm's release history: stored as Secrets labelled owner=helm; none yet.
    if (/^\/api\/v1\/namespaces\/[^/]+\/secrets$/.test(path))
      return [200, { kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [] }];
    const secret = secrets.get(path);
    return secret === undefined ? [404, notFound] : [200, secret];
  };
  const server: Server = createServer((req, res) => {
    const [code, body] = answer(req.method, new URL(req.url ?? '/', 'http://localhost').pathname);
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  writeFileSync(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'fake', user: { token: 'fake' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    }),
    { mode: 0o600 },
  );
  return {
    kubeconfig: kubeconfigPath,
    putSecret(secret) {
      secrets.set(`/api/v1/namespaces/${secret.metadata.namespace}/secrets/${secret.metadata.name}`, {
        apiVersion: 'v1',
        kind: 'Secret',
        ...secret,
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
