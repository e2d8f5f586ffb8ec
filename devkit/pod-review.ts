// A pod CREATE AdmissionReview as the API server sends it to /mutate, for the demo's local webhook and the tests.

export interface PodReviewOptions {
  readonly uid?: string;
  readonly namespace?: string;
}

export function podReview(pod: unknown, options: PodReviewOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? 'u-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: options.namespace ?? 'default',
      operation: 'CREATE',
      userInfo: { username: 'test' },
      object: pod,
      oldObject: null,
      dryRun: false,
    },
  };
}
