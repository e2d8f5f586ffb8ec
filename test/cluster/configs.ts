// The configuration files of the cluster's components, written into the state folder before the supervisor
// starts them. JSON throughout (valid YAML for the kubelet and kubeconfigs). Everything a component would
// write outside the state folder by default is pointed into it here; the rest is caught by supervisor.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { CNI_BIN_DIR } from '../../scripts/setup-cluster.ts';
import { API_PORT, BRIDGE, NODE_IP, NODE_NAME, PAUSE_IMAGE, POD_CIDR } from './layout.ts';
import type { ClusterLayout } from './layout.ts';
import type { ClusterPki } from './pki.ts';

/** Values the kubelet checks (protectKernelDefaults) but must not write on a shared machine: see supervisor.ts. */
export const KERNEL_DEFAULTS: Readonly<Record<string, string>> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

function kubeconfig(server: string, caFile: string, user: string, cert: string, key: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'sidekey-test', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { 'client-certificate': cert, 'client-key': key } }],
      contexts: [{ name: 'sidekey-test', context: { cluster: 'sidekey-test', user, namespace: 'default' } }],
      'current-context': 'sidekey-test',
    },
    null,
    2,
  );
}

/** containerd 1.6 (CRI v1): its own root, state and socket; the `opt` plugin (which writes /opt/containerd) off. */
function containerdConfig(layout: ClusterLayout): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${JSON.stringify(layout.containerdRoot)}`,
    `state = ${JSON.stringify(layout.containerdState)}`,
    'disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
    '[grpc]',
    `  address = ${JSON.stringify(layout.containerdSocket)}`,
    `[${cri}]`,
    `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
    // runc cannot lower oom_score_adj here (root lacks CAP_SYS_RESOURCE): never ask it to.
    '  restrict_oom_score_adj = true',
    `[${cri}.cni]`,
    `  bin_dir = ${JSON.stringify(CNI_BIN_DIR)}`,
    `  conf_dir = ${JSON.stringify(layout.cniConfDir)}`,
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    '',
  ].join('\n');
}

/** The bridge in the cluster's own namespace; no masquerading (no firewall rules), leases in the state folder. */
function cniConfig(layout: ClusterLayout): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'sidekey-test',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: layout.cniDataDir,
          },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(layout: ClusterLayout, pki: ClusterPki): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: NODE_IP,
      port: 10_250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10_248,
      tlsCertFile: pki.kubeletCert,
      tlsPrivateKeyFile: pki.kubeletKey,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: false },
        x509: { clientCAFile: pki.caCert },
      },
      authorization: { mode: 'AlwaysAllow' },
      cgroupDriver: 'cgroupfs',
      cgroupRoot: `/${layout.cgroupRoot}`,
      containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
      // Check the kernel settings, never write them, and leave the firewall alone (a shared machine).
      protectKernelDefaults: true,
      makeIPTablesUtilChains: false,
      failSwapOn: false,
      podLogsDir: layout.podLogsDir,
      resolvConf: '/etc/resolv.conf',
      // Images come from imported archives and cannot be pulled again: never garbage-collect them.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      evictionHard: {
        'memory.available': '100Mi',
        'nodefs.available': '1%',
        'imagefs.available': '1%',
        'nodefs.inodesFree': '1%',
      },
      maxPods: 60,
      serializeImagePulls: false,
      rotateCertificates: false,
    },
    null,
    2,
  );
}

/** Writes every component's configuration into the state folder. */
export function writeConfigs(layout: ClusterLayout, pki: ClusterPki, hostApiPort: number): void {
  for (const dir of [
    layout.logDir,
    layout.etcdDir,
    layout.containerdRoot,
    layout.containerdState,
    layout.cniConfDir,
    layout.cniDataDir,
    layout.kubeletRoot,
    layout.podLogsDir,
    layout.sysctlDir,
    layout.overlayDir,
  ]) {
    mkdirSync(dir, { recursive: true });
  }
  const admin = [pki.caCert, 'admin', pki.adminCert, pki.adminKey] as const;
  writeFileSync(layout.kubeconfig, kubeconfig(`https://127.0.0.1:${hostApiPort}`, ...admin), { mode: 0o600 });
  writeFileSync(layout.insideKubeconfig, kubeconfig(`https://127.0.0.1:${API_PORT}`, ...admin), { mode: 0o600 });
  writeFileSync(
    layout.nodeKubeconfig,
    kubeconfig(`https://127.0.0.1:${API_PORT}`, pki.caCert, `system:node:${NODE_NAME}`, pki.nodeCert, pki.nodeKey),
    { mode: 0o600 },
  );
  writeFileSync(layout.containerdConfig, containerdConfig(layout));
  writeFileSync(`${layout.cniConfDir}/10-sidekey-test.conflist`, cniConfig(layout));
  writeFileSync(layout.kubeletConfig, kubeletConfig(layout, pki));
  for (const [key, value] of Object.entries(KERNEL_DEFAULTS))
    writeFileSync(`${layout.sysctlDir}/${key.replaceAll('/', '.')}`, `${value}\n`);
}
