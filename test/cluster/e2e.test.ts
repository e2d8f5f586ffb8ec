// End to end on a real single-node Kubernetes (test/cluster/): the chart installed by `helm install` with the
// webhook and agent images assembled from the Dockerfiles, pods admitted by the real apiserver and run by the
// real kubelet and containerd, secrets from a real OpenBao (kubernetes auth checked by the apiserver's
// TokenReview), moto and PostgreSQL. One cluster for the whole file; scenarios run in order.
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fingerprint } from '../../devkit/apps/secrets-dir.ts';
import type { Status } from '../../devkit/apps/secrets-dir.ts';
import { assertNoLeak } from '../support/no-leak.ts';
import { parseAgentStatus } from '../../agent/status-schema.ts';
import { sample } from '../../agent/testdata/agent-process.ts';
import { MOTO_ACCOUNT, startMoto } from '../../devkit/backends/moto.ts';
import type { MotoHandle } from '../../devkit/backends/moto.ts';
import { READ_ALL_POLICY, startOpenBao } from '../../devkit/backends/openbao.ts';
import type { OpenBaoHandle } from '../../devkit/backends/openbao.ts';
import { startPostgres } from '../../devkit/backends/postgres.ts';
import { startProcess } from '../../devkit/process.ts';
import type { PostgresHandle } from '../../devkit/backends/postgres.ts';
import { clusterDown, clusterUp } from './cluster.ts';
import type { Cluster } from './cluster.ts';
import { createFileStore } from '../e2e/file-store.ts';
import type { FileStore } from '../e2e/file-store.ts';
import { hostFootprint } from './footprint.ts';
import type { HostFootprint } from './footprint.ts';
import { NODE_BIN, PROJECT_ROOT, clusterLayout } from './layout.ts';
import { importProjectImages } from './project-images.ts';
import {
  APP_UID,
  appFiles,
  appStatus,
  appTemplate,
  apply,
  boundServiceAccount,
  createNamespace,
  deploymentManifest,
  getJson,
  inApp,
  podLogs,
  podManifest,
  readyPod,
  restartCounts,
  servedSerial,
  serviceAccountKubeconfig,
  sidekeyStatus,
  sleep,
  until,
  waitForStatus,
} from './workloads.ts';
import type { PodView } from './workloads.ts';

/** Its own state folder (and so its own namespaces): a cluster from `npm run cluster -- up` is left alone. Two test
 * runs in one checkout at once need different folders: SIDEKEY_TEST_CLUSTER_STATE. */
const STATE_DIR = process.env.SIDEKEY_TEST_CLUSTER_STATE ?? join(PROJECT_ROOT, '.tools', 'cluster', 'test-state');
const CHART = join(PROJECT_ROOT, 'charts', 'sidekey');
const RELEASE = 'sidekey';
const SYSTEM_NS = 'sidekey';
const NS = 'e2e';
const EXCLUDED_NS = 'e2e-excluded';
const REFRESH = '10s';
const REFRESH_MS = 10_000;
/** Absorbs scheduling on a loaded 2-core test machine in the one timed promise (rotation within refresh + 2 s). */
const RUN_MARGIN_MS = 3000;
const ROTATIONS = 3;
/** Where the Vault scenario's app serves TLS with its issued certificate. */
const TLS_PORT = 8443;
const CERT_FILES = ['tls.crt', 'tls.key', 'ca.crt'];
const FILE_STORE_IN_AGENT = '/sidekey/file-store';
const log = (line: string): void => void process.stderr.write(`[cluster-e2e] ${line}\n`);

void describe('e2e on a real Kubernetes', { timeout: 30 * 60_000 }, () => {
  let cluster: Cluster;
  let bao: OpenBaoHandle;
  let moto: MotoHandle;
  let pg: PostgresHandle;
  let store: FileStore;
  /** What `after` stops, newest first: whatever `before` got to start. */
  const stops: (() => Promise<void>)[] = [];
  let baoAddr = '';
  let motoAddr = '';
  const written: string[] = [];
  let footprint: HostFootprint;
  let sampler: NodeJS.Timeout | undefined;
  let peakRss = 0;
  const cron = secretValue('cron');

  const helmValues = (): string[] => [
    '--set',
    `config.vault.addr=${baoAddr}`,
    '--set',
    'config.vault.role=e2e',
    '--set',
    'config.aws.region=us-east-1',
    '--set',
    `config.minRefresh=${REFRESH}`,
    '--set',
    `config.excludedNamespaces={${EXCLUDED_NS}}`,
    // The file store is a directory of this machine, which is the node: agents get it as a hostPath volume.
    '--set',
    `config.fileStore=${FILE_STORE_IN_AGENT}`,
    '--set',
    `config.fileStoreVolume.hostPath=${store.dir}`,
  ];

  before(async () => {
    const started = Date.now();
    await clusterDown({ stateDir: STATE_DIR });
    footprint = hostFootprint(clusterLayout(STATE_DIR));
    cluster = await clusterUp({ stateDir: STATE_DIR, log });
    stops.push(() => clusterDown({ stateDir: STATE_DIR }));
    await importProjectImages(cluster, log);
    bao = await startOpenBao();
    stops.push(() => bao.stop());
    moto = await startMoto();
    stops.push(() => moto.stop());
    pg = await startPostgres();
    stops.push(() => pg.stop());
    store = createFileStore();
    stops.push(() => {
      store.remove();
      return Promise.resolve();
    });
    const baoExposed = await cluster.exposeToPods(Number(new URL(bao.addr).port));
    stops.push(() => baoExposed.stop());
    const motoExposed = await cluster.exposeToPods(moto.port);
    stops.push(() => motoExposed.stop());
    baoAddr = `http://${baoExposed.address}`;
    motoAddr = `http://${motoExposed.address}`;
    await createNamespace(cluster, NS);
    await createNamespace(cluster, EXCLUDED_NS);
    log(`cluster, images and backends ready in ${Date.now() - started} ms`);
    sampler = setInterval(() => {
      peakRss = Math.max(peakRss, cluster.usage().rssBytes);
    }, 2000);
    stops.push(() => {
      clearInterval(sampler);
      return Promise.resolve();
    });
  });

  const stopAll = async (): Promise<void> => {
    for (let stop = stops.pop(); stop !== undefined; stop = stops.pop()) await stop();
  };
  after(stopAll);

  void test('helm install: two webhook replicas from the Dockerfile image, TLS from lookup, the webhook configuration', async () => {
    await cluster.helm([
      'install',
      RELEASE,
      CHART,
      '--namespace',
      SYSTEM_NS,
      '--create-namespace',
      '--wait',
      '--timeout',
      '180s',
      ...helmValues(),
    ]);
    const deployment = await getJson<{ status: { readyReplicas?: number } }>(cluster, [
      'get',
      'deployment',
      RELEASE,
      '-n',
      SYSTEM_NS,
    ]);
    assert.equal(deployment.status.readyReplicas, 2, 'both webhook replicas are ready');
    const pods = await getJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', SYSTEM_NS]);
    for (const pod of pods.items) {
      assert.deepEqual(
        (pod.status.containerStatuses ?? []).map((c) => c.restartCount),
        [0],
        `${pod.metadata.name} runs without restarts (the image's entrypoint takes the chart's args)`,
      );
    }
    const secret = await getJson<{ data: Record<string, string> }>(cluster, [
      'get',
      'secret',
      `${RELEASE}-tls`,
      '-n',
      SYSTEM_NS,
    ]);
    const mwc = await getJson<{ webhooks: { clientConfig: { caBundle: string } }[] }>(cluster, [
      'get',
      'mutatingwebhookconfiguration',
      RELEASE,
    ]);
    assert.equal(
      mwc.webhooks[0]?.clientConfig.caBundle,
      secret.data['ca.crt'],
      'the webhook configuration trusts the CA of the Secret',
    );
    // The CronJob starts now: its first Job (at the next minute) has run by the time its scenario checks it.
    written.push(cron);
    store.put('jobs/nightly', { token: cron });
    await apply(cluster, {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'nightly', namespace: NS },
      spec: {
        schedule: '* * * * *',
        concurrencyPolicy: 'Forbid',
        jobTemplate: {
          spec: {
            backoffLimit: 0,
            template: appTemplate({
              restartPolicy: 'Never',
              env: { APP_ONCE: '1', APP_EXPECT: 'token' },
              annotations: { inject: 'true', mode: 'init-only', 'secret-token': 'file:jobs/nightly#token' },
            }),
          },
        },
      },
    });
    const logs = await cluster.kubectl(['logs', '-n', SYSTEM_NS, `deployment/${RELEASE}`]);
    assert.match(
      logs,
      /"event":"cluster_version".*"minor":"?34"?.*"nativeSidecars":true/,
      '--sidecar-mode auto read the real server version',
    );
  });

  void test('file store: a rotation reaches the running app of a Deployment with one SIGHUP, no restart', async () => {
    const [f1, f2] = [secretValue('file-1'), secretValue('file-2')];
    written.push(f1, f2);
    store.put('team/api', { token: f1 });
    await apply(
      cluster,
      deploymentManifest(
        NS,
        'dev',
        appTemplate({
          annotations: { inject: 'true', 'secret-token': 'file:team/api#token', reload: 'signal:SIGHUP' },
        }),
      ),
    );
    const name = (await readyPod(cluster, NS, 'dev')).metadata.name;
    const first = await waitForStatus(
      cluster,
      { namespace: NS, name },
      'the first value',
      (s) => s.files.token?.sha256 === fingerprint(f1),
      30_000,
    );
    store.put('team/api', { token: f2 });
    const next = await waitForStatus(
      cluster,
      { namespace: NS, name },
      'the rotated value',
      (s) => s.files.token?.sha256 === fingerprint(f2),
      30_000,
    );
    assert.deepEqual(
      [next.pid, next.reloads, next.reasons.at(-1)],
      [first.pid, first.reloads + 1, 'SIGHUP'],
      'same process, one reload',
    );
    assert.deepEqual(
      Object.values(await restartCounts(cluster, NS, name)),
      [0, 0],
      'no restart of the agent or the app',
    );
    assertNoLeak([await podLogs(cluster, NS, name)], [f1, f2]);
  });

  void test('Vault: kubernetes auth checked by the real TokenReview; a Deployment pod (generateName) is injected and a KV v2 rotation of a field and a two-field template reaches the app with one SIGHUP; a PKI certificate, its key and CA from one issue are served by the app and re-issued before expiry with one more SIGHUP', async () => {
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    // PKI: a root CA, a role for the namespace's service names with a short max_ttl, and the one write Sidekey makes.
    const rootCa = await bao.setupPki('pki', { role: 'payments', allowedDomains: [`${NS}.svc`], maxTtl: '5m' });
    await bao.writePolicy('pki-payments', 'path "pki/issue/payments" { capabilities = ["update"] }');
    await boundServiceAccount(
      cluster,
      { namespace: NS, name: 'vault-reviewer' },
      { kind: 'ClusterRole', name: 'system:auth-delegator' },
      'e2e-vault-reviewer',
    );
    const reviewerJwt = (
      await cluster.kubectl(['create', 'token', 'vault-reviewer', '-n', NS, '--duration=2h'])
    ).trim();
    written.push(reviewerJwt);
    const apiserver = { host: cluster.server, caPem: cluster.caPem, reviewerJwt };
    await bao.configureKubernetesAuth(apiserver, 'e2e', ['read-all', 'pki-payments'], [NS, 'payments']);
    await bao.configureKubernetesAuth(apiserver, 'reports', ['read-all'], [NS, 'reports']);
    for (const sa of ['payments', 'reports', 'billing'])
      await apply(cluster, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: NS } });

    const [v1, v2] = [secretValue('vault-1'), secretValue('vault-2')];
    written.push(v1, v2);
    const template = 'postgres://{{ .username }}:{{ .password }}@db/app';
    const url = (password: string): string => `postgres://payments:${password}@db/app`;
    const serviceName = `payments.${NS}.svc`;
    const issue = `vault:pki/issue/payments?common_name=${serviceName}&ttl=1m`;
    await bao.api('POST', 'secret/data/payments/db', { data: { username: 'payments', password: v1 } });
    await apply(
      cluster,
      deploymentManifest(
        NS,
        'payments',
        appTemplate({
          serviceAccount: 'payments',
          // The stand-in app serves TLS with tls.crt and tls.key, and swaps in the new pair at each reload.
          env: { APP_TLS_PORT: String(TLS_PORT) },
          annotations: {
            inject: 'true',
            refresh: REFRESH,
            reload: 'signal:SIGHUP',
            'secret-password': 'vault:secret/payments/db#password',
            'secret-db-url': 'vault:secret/payments/db',
            'template-db-url': template,
            // One issue for the three files; the shortest ttl admission takes, so re-issued at about 40 s.
            'secret-tls.crt': `${issue}#certificate`,
            'secret-tls.key': `${issue}#private_key`,
            'secret-ca.crt': `${issue}#issuing_ca`,
          },
        }),
      ),
    );
    const pod = await readyPod(cluster, NS, 'payments');
    assert.match(pod.metadata.generateName ?? '', /^payments-/, 'a ReplicaSet pod, nameless at admission');
    assert.match(pod.metadata.annotations?.['sidekey.io/status'] ?? '', /^injected/);
    const agent = pod.spec.initContainers?.find((c) => c.name === 'sidekey-agent');
    assert.equal(agent?.restartPolicy, 'Always', 'the agent is a native sidecar');
    const name = pod.metadata.name;
    const both =
      (password: string) =>
      (s: Status): boolean =>
        s.files.password?.sha256 === fingerprint(password) && s.files['db-url']?.sha256 === fingerprint(url(password));
    const first = await waitForStatus(cluster, { namespace: NS, name }, 'the first values', both(v1), 30_000);
    assert.equal(first.uid, APP_UID);
    assert.deepEqual(
      ['password', ...CERT_FILES].map((f) => [f, first.files[f]?.mode, first.files[f]?.uid]),
      ['password', ...CERT_FILES].map((f) => [f, '0400', APP_UID]),
      "the app's own files, read-only",
    );
    const tlsCrt = (s: Status): string | undefined => s.files['tls.crt']?.sha256;
    await bao.api('POST', 'secret/data/payments/db', { data: { username: 'payments', password: v2 } });
    const next = await waitForStatus(cluster, { namespace: NS, name }, 'the rotated values', both(v2), 30_000);
    assert.deepEqual(
      [next.pid, next.reloads, next.reasons.at(-1), tlsCrt(next)],
      [first.pid, first.reloads + 1, 'SIGHUP', tlsCrt(first)],
      'same process, one reload for both files (and the certificate not re-issued yet)',
    );

    const appPod = { namespace: NS, name };
    /** The certificate files as the app read them at `seen`, checked with node:crypto; the key joins the leak scan. */
    const issued = async (seen: Status): Promise<X509Certificate> => {
      const files = await appFiles(cluster, appPod, CERT_FILES);
      assert.deepEqual(
        CERT_FILES.map((f) => fingerprint(files[f] ?? '')),
        CERT_FILES.map((f) => seen.files[f]?.sha256),
        'the bytes read out are those the app loaded',
      );
      const key = files['tls.key'] ?? '';
      written.push(key, ...pemBody(key));
      const cert = new X509Certificate(files['tls.crt'] ?? '');
      const ca = new X509Certificate(rootCa);
      assert.ok(cert.checkPrivateKey(createPrivateKey(key)), 'the key belongs to the certificate');
      assert.equal(files['ca.crt']?.trim(), rootCa.trim(), "ca.crt is the pki mount's root");
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'the CA issued the certificate');
      assert.equal(cert.subject, `CN=${serviceName}`);
      assert.equal(
        await servedSerial(cluster, appPod, { port: TLS_PORT, servername: serviceName, caFile: 'ca.crt' }),
        cert.serialNumber,
        'the app serves it to a client that trusts only ca.crt and asks for the service name',
      );
      return cert;
    };
    const cert = await issued(next);
    // The agent issues again at about 2/3 of the 1m lifetime (+ jitter): some 40 s after the pod started.
    const renewed = await waitForStatus(
      cluster,
      appPod,
      'a re-issued certificate',
      (s) => tlsCrt(s) !== tlsCrt(next),
      60_000,
    );
    const renewedSeenAt = Date.now();
    assert.deepEqual(
      [renewed.pid, renewed.reloads, renewed.reasons.at(-1), CERT_FILES.map((f) => renewed.files[f]?.mode)],
      [first.pid, next.reloads + 1, 'SIGHUP', CERT_FILES.map(() => '0400')],
      'same process, one reload for the three files',
    );
    const reissued = await issued(renewed);
    assert.notEqual(reissued.serialNumber, cert.serialNumber);
    assert.ok(reissued.validToDate > cert.validToDate, 'the new certificate ends later');
    // When the app was seen with it, not now: the checks above take seconds of kubectl exec.
    assert.ok(
      renewedSeenAt < cert.validToDate.getTime(),
      'the new certificate reached the app before the old one expired',
    );

    const shown = await sidekeyStatus(cluster.layout.kubeconfig, ['-n', NS, name, '-o', 'json']);
    assert.equal(shown.code, 0, shown.stderr);
    const agentStatus = parseAgentStatus(
      JSON.stringify((JSON.parse(shown.stdout) as { pods: { status?: unknown }[] }).pods[0]?.status),
    );
    assert.ok(agentStatus.ok, agentStatus.ok ? '' : agentStatus.error);
    assert.deepEqual(
      CERT_FILES.map((f) => {
        const file = agentStatus.value.files.find((s) => s.name === f);
        return [f, file?.version?.replaceAll(':', '').toUpperCase(), file?.certificate?.expiresAt];
      }),
      CERT_FILES.map((f) => [f, reissued.serialNumber, reissued.validToDate.toISOString()]),
      'sidekey status shows the serial and the expiry of the certificate the app serves',
    );
    const metrics = await cluster.kubectl(['get', '--raw', `/api/v1/namespaces/${NS}/pods/${name}:8099/proxy/metrics`]);
    assert.equal(
      sample(metrics, 'sidekey_agent_certificate_expiry_timestamp_seconds{file="tls.crt"}'),
      reissued.validToDate.getTime() / 1000,
    );
    assert.deepEqual(
      Object.values(await restartCounts(cluster, NS, name)),
      [0, 0],
      'no restart of the agent or the app',
    );
    assertNoLeak([await podLogs(cluster, NS, name), shown.stdout, shown.stderr, metrics], written);
  });

  // A Vault behind a private CA. OpenBao -dev-tls makes its own CA and a server certificate for localhost,
  // 127.0.0.1 and this machine's hostname (OpenBao 2.7 has no flag for another name), so pods dial it by that
  // hostname, which hostAliases maps to the node address. The CA reaches the agent from a ConfigMap named by
  // sidekey.io/vault-ca. Needs the vault-reviewer ServiceAccount of the Vault scenario.
  void test('Vault behind a private CA (OpenBao -dev-tls): the CA named by sidekey.io/vault-ca serves an injected pod; with a wrong CA the agent names the TLS failure in its log and metrics, a missing key is named by the kubelet, and nothing leaks', async () => {
    const tlsBao = await startOpenBao({ tls: true });
    stops.push(() => tlsBao.stop());
    const exposed = await cluster.exposeToPods(Number(new URL(tlsBao.addr).port));
    stops.push(() => exposed.stop());
    const reviewerJwt = (
      await cluster.kubectl(['create', 'token', 'vault-reviewer', '-n', NS, '--duration=1h'])
    ).trim();
    const value = secretValue('tls');
    written.push(reviewerJwt, value);
    await tlsBao.writePolicy('read-all', READ_ALL_POLICY);
    await tlsBao.configureKubernetesAuth(
      { host: cluster.server, caPem: cluster.caPem, reviewerJwt },
      'e2e',
      ['read-all'],
      [NS, 'payments'],
    );
    await tlsBao.api('POST', 'secret/data/tls/app', { data: { token: value } });
    // The wrong CA is a real one too: the cluster's own.
    for (const [name, pem] of [
      ['bao-ca', readFileSync(tlsBao.caFile ?? '', 'utf8')],
      ['wrong-ca', cluster.caPem],
    ] as const) {
      await apply(cluster, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: NS },
        data: { 'ca.crt': pem },
      });
    }
    const template = (ca: string): Record<string, unknown> => {
      const t = appTemplate({
        serviceAccount: 'payments',
        annotations: {
          inject: 'true',
          'secret-token': 'vault:secret/tls/app#token',
          'vault-addr': `https://${hostname()}:${exposed.port}`,
          'vault-ca': `configmap:${ca}`,
        },
      });
      return { ...t, spec: { ...(t.spec as object), hostAliases: [{ ip: exposed.host, hostnames: [hostname()] }] } };
    };
    await apply(cluster, deploymentManifest(NS, 'tls-vault', template('bao-ca')));
    await apply(cluster, podManifest(NS, 'tls-vault-wrong-ca', template('wrong-ca')));
    // A key the ConfigMap lacks: the webhook reads no objects, so the kubelet holds the pod and says which key.
    await apply(cluster, podManifest(NS, 'tls-vault-no-key', template('bao-ca#vault.pem')));
    const served = (await readyPod(cluster, NS, 'tls-vault')).metadata.name;
    await waitForStatus(
      cluster,
      { namespace: NS, name: served },
      'the secret over TLS',
      (s) => s.files.token?.sha256 === fingerprint(value),
      30_000,
    );

    let agentLog = '';
    await until("the TLS failure in the wrong-CA agent's log", 60_000, async () => {
      agentLog = await cluster.kubectl(['logs', 'tls-vault-wrong-ca', '-n', NS, '-c', 'sidekey-agent']);
      return agentLog.includes('"code":"TLS_VERIFY_FAILED"');
    });
    assert.match(
      agentLog,
      /TLS verification failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\): the server's certificate is not signed by a CA the agent trusts/,
    );
    const metrics = await cluster.kubectl([
      'get',
      '--raw',
      `/api/v1/namespaces/${NS}/pods/tls-vault-wrong-ca:8099/proxy/metrics`,
    ]);
    assert.match(metrics, /sidekey_agent_fetch_errors_total\{[^}]*code="TLS_VERIFY_FAILED"[^}]*\} [1-9]/);
    const stuck = await getJson<PodView>(cluster, ['get', 'pod', 'tls-vault-wrong-ca', '-n', NS]);
    assert.equal(stuck.status.phase, 'Pending', 'the app never starts without its secret');
    let mountEvent = '';
    await until('a FailedMount event for the missing key', 60_000, async () => {
      const events = await getJson<{ items: { reason: string; message: string; involvedObject: { name: string } }[] }>(
        cluster,
        ['get', 'events', '-n', NS],
      );
      mountEvent =
        events.items.find((e) => e.reason === 'FailedMount' && e.involvedObject.name === 'tls-vault-no-key')?.message ??
        '';
      return mountEvent !== '';
    });
    assert.match(mountEvent, /sidekey-vault-ca.*vault\.pem/);
    const status = await statusAsReader(served);
    assertNoLeak([await podLogs(cluster, NS, served), agentLog, metrics, status], [value, reviewerJwt]);
    await cluster.kubectl([
      'delete',
      'deployment/tls-vault',
      'pod/tls-vault-wrong-ca',
      'pod/tls-vault-no-key',
      '-n',
      NS,
      '--wait=false',
    ]);
  });

  /**
   * `sidekey status` as a service account holding only the RBAC the operator guide lists, while the scenario above
   * has a pod fresh (`served`), one failing (the wrong CA) and one whose agent never started (the missing key).
   * Returns everything it printed, for the leak scan.
   */
  const statusAsReader = async (served: string): Promise<string> => {
    await apply(cluster, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'sidekey-status', namespace: NS },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
        { apiGroups: [''], resources: ['pods/proxy'], verbs: ['get'] },
      ],
    });
    await boundServiceAccount(
      cluster,
      { namespace: NS, name: 'status-reader' },
      { kind: 'Role', name: 'sidekey-status' },
      'sidekey-status',
    );
    const kubeconfig = join(cluster.layout.stateDir, 'status-reader.kubeconfig');
    written.push(await serviceAccountKubeconfig(cluster, NS, 'status-reader', kubeconfig));
    const started = Date.now();
    const json = await sidekeyStatus(kubeconfig, ['-o', 'json']);
    log(`sidekey status -o json read the namespace in ${Date.now() - started} ms`);
    assert.equal(json.code, 1, `a failing pod makes the exit code 1: ${json.stderr}`);
    const rows = (
      JSON.parse(json.stdout) as { pods: { name: string; state: string; status?: unknown; reason?: string }[] }
    ).pods;
    const row = (name: string) => {
      const found = rows.find((r) => r.name === name);
      assert.ok(found !== undefined, `${name} is listed: ${rows.map((r) => r.name).join(', ')}`);
      if (found.status !== undefined) {
        const parsed = parseAgentStatus(JSON.stringify(found.status));
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
        return { ...found, status: parsed.value };
      }
      return { ...found, status: undefined };
    };
    const fresh = row(served);
    assert.equal(fresh.state, 'fresh');
    assert.deepEqual(
      fresh.status?.files.map((f) => [f.name, f.reference, f.state, f.version]),
      [['token', 'vault:secret/tls/app#token', 'fresh', '1']],
      'the KV v2 version is shown',
    );
    const failing = row('tls-vault-wrong-ca');
    assert.equal(failing.state, 'failing');
    assert.equal(failing.status?.files[0]?.lastError?.code, 'TLS_VERIFY_FAILED');
    const stuck = row('tls-vault-no-key');
    assert.deepEqual([stuck.state, stuck.reason], ['unreachable', 'the pod is Pending']);
    assert.ok(
      rows.filter((r) => r.state === 'unreachable').every((r) => r.name === 'tls-vault-no-key'),
      `every agent that runs was read: ${JSON.stringify(rows.map((r) => [r.name, r.state, r.reason]))}`,
    );
    const table = await sidekeyStatus(kubeconfig, []);
    log(`sidekey status (exit ${table.code}):\n${table.stdout}`);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /^tls-vault-wrong-ca +failing +0\/0\/1 +TLS_VERIFY_FAILED \(token\) +never +-$/m);
    const one = await sidekeyStatus(kubeconfig, [served]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^${served} +fresh +1/0/0 +- +\\d+s ago +-$`, 'm'));
    const everywhere = await sidekeyStatus(kubeconfig, ['-A']);
    assert.equal(everywhere.code, 2, 'listing every namespace needs a ClusterRole');
    assert.match(
      everywhere.stderr,
      /cannot list pods in all namespaces: HTTP 403: .*\(the user needs get and list on pods\)/,
    );
    const asAdmin = await sidekeyStatus(cluster.layout.kubeconfig, ['-A']);
    assert.equal(asAdmin.code, 1, asAdmin.stderr);
    assert.match(asAdmin.stdout, /^NAMESPACE +POD +STATE/);
    assert.match(asAdmin.stdout, new RegExp(`^${NS} +tls-vault-wrong-ca +failing +0/0/1 +TLS_VERIFY_FAILED`, 'm'));
    return [json, table, one, everywhere, asAdmin].map((r) => r.stdout + r.stderr).join('\n');
  };

  void test(`AWS: IRSA with the real projected token through moto; ${ROTATIONS} rotations reach the app within refresh + 2 s, one HTTP reload each`, async (t) => {
    const put = async (first: boolean): Promise<string> => {
      const key = secretValue('aws');
      written.push(key);
      const SecretString = JSON.stringify({ key });
      if (first) await moto.admin.send(new CreateSecretCommand({ Name: 'prod/billing/api', SecretString }));
      else await moto.admin.send(new PutSecretValueCommand({ SecretId: 'prod/billing/api', SecretString }));
      return fingerprint(key);
    };
    const initial = await put(true);
    await apply(
      cluster,
      deploymentManifest(
        NS,
        'billing',
        appTemplate({
          serviceAccount: 'billing',
          irsa: true,
          env: {
            AWS_ROLE_ARN: `arn:aws:iam::${MOTO_ACCOUNT}:role/billing`,
            AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
            AWS_REGION: moto.region,
            AWS_ENDPOINT_URL: motoAddr,
          },
          annotations: {
            inject: 'true',
            'secret-api-key': 'aws:prod/billing/api#key',
            refresh: REFRESH,
            reload: 'http:http://127.0.0.1:8080/reload',
          },
        }),
      ),
    );
    const pod = { namespace: NS, name: (await readyPod(cluster, NS, 'billing')).metadata.name };
    const first = await waitForStatus(
      cluster,
      pod,
      'the first value',
      (s) => s.files['api-key']?.sha256 === initial,
      30_000,
    );
    const latencies: number[] = [];
    for (let i = 0; i < ROTATIONS; i++) {
      const rotatedAt = Date.now();
      const expected = await put(false);
      await waitForStatus(
        cluster,
        pod,
        `rotation ${i + 1} within refresh + 2 s (+${RUN_MARGIN_MS} ms margin)`,
        (s) => s.files['api-key']?.sha256 === expected,
        REFRESH_MS + 2000 + RUN_MARGIN_MS,
      );
      latencies.push(Date.now() - rotatedAt);
    }
    t.diagnostic(
      `aws rotation-to-app latency through the apiserver's pod proxy: ${latencies.join(', ')} ms (refresh ${REFRESH_MS} ms)`,
    );
    const last = await appStatus(cluster, NS, pod.name);
    assert.deepEqual(
      [last.pid, last.reasons],
      [first.pid, ['start', ...Array<string>(ROTATIONS).fill('http')]],
      'same process, one reload per rotation',
    );
    assert.deepEqual(
      Object.values(await restartCounts(cluster, NS, pod.name)),
      [0, 0],
      'no restart of the agent or the app',
    );
    assertNoLeak([await podLogs(cluster, NS, pod.name)], written);
  });

  void test('Vault dynamic PostgreSQL credentials: the lease is renewed, then replaced before its max TTL with one reload', async () => {
    const ttl = 12;
    const maxTtl = 36;
    await bao.setupDatabase(pg, { role: 'readonly', defaultTtl: `${ttl}s`, maxTtl: `${maxTtl}s` });
    written.push(pg.superuserPassword);
    const pgExposed = await cluster.exposeToPods(pg.port);
    stops.push(() => pgExposed.stop());
    await apply(
      cluster,
      podManifest(
        NS,
        'reports',
        appTemplate({
          serviceAccount: 'reports',
          annotations: {
            inject: 'true',
            'vault-role': 'reports',
            reload: 'signal:SIGHUP',
            'secret-db-url': 'vault:database/creds/readonly',
            'template-db-url': `postgresql://{{ .username }}:{{ .password }}@${pgExposed.address}/postgres?sslmode=disable`,
          },
          labels: { workload: 'reports' },
        }),
      ),
    );
    await readyPod(cluster, NS, 'reports');
    const reports = { namespace: NS, name: 'reports' };
    const login = async (): Promise<{ user: string; password: string }> => {
      const url = new URL((await appFiles(cluster, reports, ['db-url']))['db-url'] ?? '');
      const credential = { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      written.push(credential.password);
      return credential;
    };
    const first = await login();
    // The app's URL points at PostgreSQL as pods reach it; the stand-in app has no client, so the pod opens the
    // connection and the test logs in with the same login to the same server.
    const reach = `require("net").connect(${pgExposed.port}, "${pgExposed.host}").on("connect", () => { process.stdout.write("open"); process.exit(0); })`;
    assert.equal(await inApp(cluster, reports, reach), 'open', "the pod reaches PostgreSQL at the URL's address");
    assert.equal(await pg.query('SELECT current_user', first), first.user, 'the issued login connects');
    const issuedAt = Date.now();
    await sleep(ttl * 1000);
    const metrics = await cluster.kubectl(['get', '--raw', `/api/v1/namespaces/${NS}/pods/reports:8099/proxy/metrics`]);
    assert.match(
      metrics,
      /sidekey_agent_lease_renewals_total\{[^}]*result="(ok|success)"[^}]*\} [1-9]/,
      'the lease was renewed',
    );
    assert.equal((await appStatus(cluster, NS, 'reports')).reloads, 0, 'a renewal changes nothing for the app');
    const next = await waitForStatus(cluster, reports, 'a new login', (s) => s.reloads === 1, (maxTtl + 10) * 1000);
    assert.ok(Date.now() - issuedAt < maxTtl * 1000, 'the new login arrived before the old one reached its max TTL');
    assert.equal(next.reasons.at(-1), 'SIGHUP');
    const second = await login();
    assert.notEqual(second.user, first.user);
    assert.equal(await pg.query('SELECT current_user', second), second.user, 'the new login connects');
    assert.deepEqual(Object.values(await restartCounts(cluster, NS, 'reports')), [0, 0]);
    assertNoLeak([await podLogs(cluster, NS, 'reports')], written);
  });

  void test("a Job completes with the native-sidecar agent; a CronJob's Job completes in init-only mode", async () => {
    const job = appTemplate({
      serviceAccount: 'payments',
      restartPolicy: 'Never',
      env: { APP_ONCE: '1', APP_EXPECT: 'password' },
      annotations: { inject: 'true', 'secret-password': 'vault:secret/payments/db#password' },
    });
    await apply(cluster, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'once', namespace: NS },
      spec: { backoffLimit: 0, template: job },
    });
    await cluster.kubectl(['wait', '--for=condition=complete', 'job/once', '-n', NS, '--timeout=120s']);
    const oncePod = (await getJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', NS, '-l', 'job-name=once']))
      .items[0];
    assert.ok(oncePod !== undefined, "the Job's pod");
    assert.equal(oncePod.spec.initContainers?.find((c) => c.name === 'sidekey-agent')?.restartPolicy, 'Always');
    const exitCodes = [
      ...(oncePod.status.initContainerStatuses ?? []),
      ...(oncePod.status.containerStatuses ?? []),
    ].map((c) => [c.name, c.state?.terminated?.exitCode]);
    assert.deepEqual(
      exitCodes,
      [
        ['sidekey-agent', 0],
        ['app', 0],
      ],
      'the app exited 0, then the agent stopped cleanly on SIGTERM',
    );
    let cronJob = '';
    await until('a Job of the CronJob', 90_000, async () => {
      const jobs = await getJson<{
        items: { metadata: { name: string; ownerReferences?: { kind: string }[] }; status: { succeeded?: number } }[];
      }>(cluster, ['get', 'jobs', '-n', NS]);
      const done = jobs.items.find(
        (j) => j.metadata.ownerReferences?.some((o) => o.kind === 'CronJob') === true && j.status.succeeded === 1,
      );
      cronJob = done?.metadata.name ?? '';
      return done !== undefined;
    });
    const [cronPod] = (
      await getJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', NS, '-l', `job-name=${cronJob}`])
    ).items;
    const agent = cronPod?.spec.initContainers?.find((c) => c.name === 'sidekey-agent');
    assert.ok(
      agent !== undefined && agent.restartPolicy === undefined,
      'init-only: a plain init container that writes and exits',
    );
    // sidekey status: the Job's pod has finished with its agent, the CronJob's agent wrote and exited; neither fails.
    for (const [pod, state, reason] of [
      [oncePod.metadata.name, 'finished', 'the pod succeeded; its agent has stopped'],
      [cronPod?.metadata.name ?? '', 'init-only', 'the init-only agent wrote the files and exited'],
    ] as const) {
      const shown = await sidekeyStatus(cluster.layout.kubeconfig, ['-n', NS, pod, '-o', 'json']);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(
        (JSON.parse(shown.stdout) as { pods: { name: string; state: string; reason?: string }[] }).pods,
        [{ namespace: NS, name: pod, state, reason }],
      );
    }
    const appLog = await cluster.kubectl(['logs', cronPod?.metadata.name ?? '', '-n', NS, '-c', 'app']);
    assert.match(appLog, new RegExp(`token:${fingerprint(cron)}`), 'the app read the file the init container wrote');
    await cluster.kubectl(['delete', 'cronjob', 'nightly', '-n', NS, '--wait=false']);
  });

  void test('a bad annotation is refused at kubectl apply, with the same message for a Deployment, a CronJob and a bare Pod; in warn mode the Deployment is applied with it as a warning and its pods are refused', async () => {
    const annotations = { inject: 'true', 'secret-password': 'vault:secret/payments/db#password', refresh: 'soon' };
    const bad = appTemplate({ annotations });
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'broken', namespace: NS },
      spec: {
        schedule: '@daily',
        jobTemplate: { spec: { template: appTemplate({ restartPolicy: 'Never', annotations }) } },
      },
    };
    const refusal = async (manifest: Record<string, unknown>, webhook: string): Promise<string> => {
      const error = await apply(cluster, manifest).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      assert.ok(error !== undefined, `${String(manifest['kind'])} applied`);
      assert.match(
        error.message,
        new RegExp(`admission webhook "${webhook.replaceAll('.', '\\.')}" denied the request`),
      );
      return (
        /annotation "sidekey\.io\/refresh": [^\n]*/.exec(error.message)?.[0] ?? '(no message naming the annotation)'
      );
    };
    const message = await refusal(deploymentManifest(NS, 'broken', bad), 'workloads.sidekey.io');
    assert.equal(await refusal(cronJob, 'cronjobs.sidekey.io'), message);
    assert.equal(
      await refusal(podManifest(NS, 'broken', bad), 'inject.sidekey.io'),
      message,
      'a bare Pod is refused by the mutating webhook',
    );

    // Only the ValidatingWebhookConfiguration changes (no rollout); the upgrade scenario below sets refuse again.
    await cluster.helm([
      'upgrade',
      RELEASE,
      CHART,
      '--namespace',
      SYSTEM_NS,
      ...helmValues(),
      '--set',
      'workloadCheck.mode=warn',
    ]);
    const warned = await cluster
      .kubectl(['apply', '--warnings-as-errors', '-f', '-'], JSON.stringify(deploymentManifest(NS, 'broken', bad)))
      .then(
        () => '',
        (e: unknown) => (e as Error).message,
      );
    assert.ok(warned.includes(`Warning: ${message}`), `the refusal comes back as a warning: ${warned}`);
    let event = '';
    await until('a FailedCreate event of the ReplicaSet', 60_000, async () => {
      const events = await getJson<{
        items: { reason: string; message: string; involvedObject: { kind: string; name: string } }[];
      }>(cluster, ['get', 'events', '-n', NS]);
      event =
        events.items.find(
          (e) =>
            e.reason === 'FailedCreate' &&
            e.involvedObject.kind === 'ReplicaSet' &&
            e.involvedObject.name.startsWith('broken-'),
        )?.message ?? '';
      return event !== '';
    });
    assert.match(event, /admission webhook "inject\.sidekey\.io" denied the request/);
    assert.ok(event.includes(message), 'its pods are still refused, with the same message');
    await cluster.kubectl(['delete', 'deployment', 'broken', '-n', NS]);
  });

  const optedIn = (namespace: string): Record<string, unknown> =>
    podManifest(
      namespace,
      'dry',
      appTemplate({
        serviceAccount: namespace === NS ? 'payments' : 'default',
        annotations: { inject: 'true', 'secret-password': 'vault:secret/payments/db#password' },
      }),
    );
  const dryRun = async (manifest: Record<string, unknown>): Promise<PodView> =>
    JSON.parse(
      await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(manifest)),
    ) as PodView;
  const injected = (pod: PodView): boolean => pod.spec.initContainers?.some((c) => c.name === 'sidekey-agent') === true;

  void test('excluded namespaces are never injected', async () => {
    assert.equal(injected(await dryRun(optedIn(NS))), true, 'the same pod is injected elsewhere');
    const pod = await dryRun(optedIn(EXCLUDED_NS));
    assert.equal(injected(pod), false);
    assert.equal(pod.metadata.annotations?.['sidekey.io/status'], undefined);
  });

  void test('helm upgrade keeps the CA and no admission fails while the webhook rolls', async () => {
    const caBundle = async (): Promise<string> =>
      (
        await getJson<{ webhooks: { clientConfig: { caBundle: string } }[] }>(cluster, [
          'get',
          'mutatingwebhookconfiguration',
          RELEASE,
        ])
      ).webhooks[0]?.clientConfig.caBundle ?? '';
    const before = await caBundle();
    const podsBefore = (await getJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', SYSTEM_NS])).items.map(
      (p) => p.metadata.name,
    );
    const state = { rolling: true };
    const failures: string[] = [];
    let admitted = 0;
    const load = (async (): Promise<void> => {
      while (state.rolling) {
        try {
          if (injected(await dryRun(optedIn(NS)))) admitted += 1;
          else failures.push('admitted without injection');
        } catch (error) {
          failures.push((error as Error).message);
        }
        await sleep(200);
      }
    })();
    try {
      await cluster.helm([
        'upgrade',
        RELEASE,
        CHART,
        '--namespace',
        SYSTEM_NS,
        '--wait',
        '--timeout',
        '180s',
        ...helmValues(),
        '--set-string',
        'podAnnotations.e2e-rollout=2',
      ]);
    } finally {
      state.rolling = false;
      await load;
    }
    assert.deepEqual(failures, [], 'every admission during the rollout succeeded');
    assert.ok(admitted > 0, `admissions were sent during the rollout (${admitted})`);
    assert.equal(await caBundle(), before, 'the CA survives the upgrade');
    const podsAfter = (await getJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', SYSTEM_NS])).items;
    const serving = podsAfter.filter((p) => p.metadata.deletionTimestamp === undefined).map((p) => p.metadata.name);
    assert.equal(serving.length, 2);
    assert.deepEqual(
      serving.filter((p) => podsBefore.includes(p)),
      [],
      'every webhook pod was replaced (the old ones are draining)',
    );
  });

  void test('webhook scaled to 0: an opted-in pod is refused (failurePolicy Fail), an opted-in Deployment is not (Ignore); pods without the annotation never reach it', async () => {
    await cluster.kubectl(['scale', 'deployment', RELEASE, '-n', SYSTEM_NS, '--replicas=0']);
    await until(
      'no webhook pod',
      60_000,
      async () => (await getJson<{ items: unknown[] }>(cluster, ['get', 'pods', '-n', SYSTEM_NS])).items.length === 0,
    );
    await assert.rejects(dryRun(optedIn(NS)), /inject\.sidekey\.io/, 'refused while no replica answers');
    const workload = deploymentManifest(
      NS,
      'unchecked',
      appTemplate({ annotations: { inject: 'true', 'secret-password': 'vault:secret/payments/db#password' } }),
    );
    await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(workload)); // the workload check fails open (Ignore)
    const plain = podManifest(NS, 'plain', appTemplate({ annotations: {} }));
    assert.equal(injected(await dryRun(plain)), false, 'a pod without the annotation is created');
    const optedOut = podManifest(NS, 'opted-out', appTemplate({ annotations: { inject: 'false' } }));
    assert.equal(injected(await dryRun(optedOut)), false, 'inject "false" is not sent either');
    await cluster.kubectl(['scale', 'deployment', RELEASE, '-n', SYSTEM_NS, '--replicas=2']);
    await cluster.kubectl(['rollout', 'status', `deployment/${RELEASE}`, '-n', SYSTEM_NS, '--timeout=120s']);
  });

  void test('no secret value in the webhook logs; helm uninstall leaves nothing', async () => {
    assertNoLeak(
      [await cluster.kubectl(['logs', '-n', SYSTEM_NS, '-l', 'app.kubernetes.io/instance=sidekey', '--tail=-1'])],
      written,
    );
    await cluster.helm(['uninstall', RELEASE, '--namespace', SYSTEM_NS, '--wait', '--timeout', '120s']);
    const kinds = 'all,secrets,configmaps,serviceaccounts,poddisruptionbudgets,networkpolicies,roles,rolebindings';
    let left = '';
    // The webhook pods go with their ReplicaSet through the garbage collector, after helm has returned.
    await until("the release's objects to be gone", 60_000, async () => {
      left = (
        await cluster.kubectl([
          'get',
          kinds,
          '-n',
          SYSTEM_NS,
          '-l',
          `app.kubernetes.io/instance=${RELEASE}`,
          '-o',
          'name',
        ])
      ).trim();
      return left === '';
    }).catch(() => undefined);
    assert.equal(left, '', 'no object of the release in its namespace');
    const cluster_ = await cluster.kubectl([
      'get',
      'mutatingwebhookconfigurations,validatingwebhookconfigurations,clusterroles,clusterrolebindings',
      '-l',
      `app.kubernetes.io/instance=${RELEASE}`,
      '-o',
      'name',
    ]);
    assert.equal(cluster_.trim(), '', 'no cluster-wide object of the release');
  });

  void test('stopping the cluster leaves nothing, even after a crashed client: no process, mount, cgroup, network namespace, interface or file', async () => {
    clearInterval(sampler);
    // A client killed outright leaves its egress forwarder behind in the cluster's namespace: down must end it.
    const client = startProcess(NODE_BIN, ['--input-type=module', '-e', CRASHING_CLIENT, STATE_DIR]);
    await until("the crashing client's forward", 30_000, () => Promise.resolve(client.output().includes('forwarding')));
    process.kill(client.pid, 'SIGKILL');
    await client.exited();
    const { peakMemoryBytes, cpuSeconds } = cluster.usage();
    const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
    log(
      `the cluster (components and pods): peak RSS ${mib(peakRss)} MiB (sampled every 2 s), peak with page cache ${mib(peakMemoryBytes)} MiB, ${cpuSeconds.toFixed(0)} s of CPU`,
    );
    assert.deepEqual(
      footprint,
      { ...footprint, processes: [], mounts: [], cgroups: [], netns: [], stateDir: false },
      'nothing of a cluster before it started',
    );
    await stopAll();
    assert.deepEqual(hostFootprint(clusterLayout(STATE_DIR)), footprint);
  });
});

/** Attaches to the cluster (state folder in argv[1]), exposes a port to pods, says so, and waits to be killed. */
const CRASHING_CLIENT = `
  const { attachCluster } = await import(${JSON.stringify(join(PROJECT_ROOT, 'test', 'cluster', 'cluster.ts'))});
  await attachCluster({ stateDir: process.argv[1] }).exposeToPods(9);
  process.stdout.write('forwarding\\n');
  setInterval(() => undefined, 60_000);
`;

/** The base64 lines of a PEM block: what a log line quoting it (newlines escaped) would show. */
function pemBody(pem: string): string[] {
  return pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
}

/** A distinctive test value (never printed: the tests compare fingerprints and scan logs for it). */
function secretValue(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}
