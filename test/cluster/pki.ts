// The cluster's certificates, made once per state folder with the openssl CLI (ECDSA P-256, 30 days): a CA,
// the apiserver's serving certificate (valid for the host-side forward, the pods' kubernetes Service and its
// in-namespace address), client certificates for the admin (system:masters: kubectl, helm, the
// controller-manager and scheduler) and the node (system:node:<name>), the kubelet's serving certificate, and
// the key pair that signs service-account tokens.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClusterPki {
  readonly dir: string;
  readonly caCert: string;
  readonly apiserverCert: string;
  readonly apiserverKey: string;
  readonly adminCert: string;
  readonly adminKey: string;
  readonly nodeCert: string;
  readonly nodeKey: string;
  readonly kubeletCert: string;
  readonly kubeletKey: string;
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
}

export interface PkiNames {
  readonly nodeName: string;
  /** Addresses the apiserver is reached at: the forward on the host, the Service IP and the node's address. */
  readonly apiserverIps: readonly string[];
  readonly nodeIp: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const DAYS = '30';

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new Error(
      `openssl ${args[0] ?? ''} failed in ${cwd}: ${String((error as { stderr?: Buffer }).stderr ?? error)}`,
      { cause: error },
    );
  }
}

/** Issues <name>.crt/<name>.key signed by ca.crt with the given subject and X.509 v3 extensions. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(['req', ...EC, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      DAYS,
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

const serverExt = (sans: readonly string[]): string =>
  `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`;
const CLIENT_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';

/** Where the files of a PKI made by ensurePki are. */
export function pkiPaths(dir: string): ClusterPki {
  const at = (file: string): string => join(dir, file);
  return {
    dir,
    caCert: at('ca.crt'),
    apiserverCert: at('apiserver.crt'),
    apiserverKey: at('apiserver.key'),
    adminCert: at('admin.crt'),
    adminKey: at('admin.key'),
    nodeCert: at('node.crt'),
    nodeKey: at('node.key'),
    kubeletCert: at('kubelet.crt'),
    kubeletKey: at('kubelet.key'),
    serviceAccountKey: at('sa.key'),
    serviceAccountPub: at('sa.pub'),
  };
}

/** Creates the PKI in `dir` unless it is already there (a cluster restarted on the same state keeps its CA). */
export function ensurePki(dir: string, names: PkiNames): ClusterPki {
  const pki = pkiPaths(dir);
  if (existsSync(pki.serviceAccountPub)) return pki;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-days',
      DAYS,
      '-subj',
      '/CN=sidekey-test-cluster-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  const apiSans = [
    ...names.apiserverIps.map((ip) => `IP:${ip}`),
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ];
  issue(dir, 'apiserver', '/CN=kube-apiserver', serverExt(apiSans));
  issue(dir, 'admin', '/O=system:masters/CN=sidekey-test-admin', CLIENT_EXT);
  issue(dir, 'node', `/O=system:nodes/CN=system:node:${names.nodeName}`, CLIENT_EXT);
  issue(dir, 'kubelet', `/CN=${names.nodeName}`, serverExt([`IP:${names.nodeIp}`, `DNS:${names.nodeName}`]));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], dir);
  openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  return pki;
}
