// The AdmissionReview the webhook benchmarks send: a realistic opted-in pod, about 10 KB.

/** A pod like a real Deployment's: three containers, env, probes, volumes, labels; about 10 KB as a review. */
export function realisticReview(uid: string): string {
  const env = (prefix: string): { name: string; value: string }[] =>
    Array.from({ length: 30 }, (_, i) => ({ name: `${prefix}_SETTING_${i}`, value: `value-${i}-${'x'.repeat(24)}` }));
  const container = (name: string, port: number): Record<string, unknown> => ({
    name,
    image: `registry.example.com/payments/${name}:v2.14.3`,
    ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    env: env(name.toUpperCase()),
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    volumeMounts: [
      { name: 'config', mountPath: `/etc/${name}` },
      { name: 'kube-api-access-7xk2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ],
    readinessProbe: { httpGet: { path: '/ready', port }, periodSeconds: 5 },
    livenessProbe: { httpGet: { path: '/live', port }, periodSeconds: 10 },
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  });
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'payments-api-6f7d8b9c4-',
      namespace: 'payments',
      labels: { app: 'payments-api', 'pod-template-hash': '6f7d8b9c4', team: 'payments', tier: 'backend' },
      annotations: {
        'sidekey.io/inject': 'true',
        'sidekey.io/secret-db-password': 'aws:prod/payments/db#password',
        'sidekey.io/secret-api-key': 'aws:prod/payments/stripe#key',
        'sidekey.io/secret-dsn': 'vault:secret/payments/db',
        'sidekey.io/template-dsn': 'postgres://{{ .username }}:{{ .password }}@db.payments.svc:5432/app',
        'sidekey.io/reload': 'signal:SIGHUP',
        'sidekey.io/aws-region': 'eu-west-1',
        'sidekey.io/vault-role': 'payments',
        'prometheus.io/scrape': 'true',
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'payments-api-6f7d8b9c4',
          uid: '3f1c2a9e-0b7d-4c1e-9a55-6d2f7f1b8c01',
          controller: true,
        },
      ],
    },
    spec: {
      serviceAccountName: 'payments-api',
      securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, runAsNonRoot: true },
      containers: [container('api', 8080), container('worker', 8081), container('metrics', 9102)],
      volumes: [
        { name: 'config', configMap: { name: 'payments-api' } },
        {
          name: 'kube-api-access-7xk2p',
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
      ],
    },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'payments',
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        groups: ['system:serviceaccounts', 'system:authenticated'],
      },
      object: pod,
      dryRun: false,
    },
  });
}
