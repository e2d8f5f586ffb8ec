// The embedded file store (local runs, the demo and tests): file:<document path>#field, enabled by the webhook's
// fileStore setting, optionally mounted into the agent from a node directory or a ConfigMap.
import { z } from 'zod';
import type { JsonObject } from '../../../injector/patch.ts';
import { PROBLEM_CODES } from '../../../injector/problems.ts';
import { declareProvider } from '../../../injector/providers/declaration.ts';

/** Env var naming the embedded file store for the agent (set only when the pod uses file: references). */
export const FILE_STORE_ENV = 'SIDEKEY_FILE_STORE';
/** The volume holding the file store when the webhook's fileStoreVolume names one. */
export const FILE_STORE_VOLUME = 'sidekey-file-store';

/** Where agents on a cluster find the file store: mounted read-only at fileStore (which is then a directory). */
const fileStoreVolumeSchema = z
  .strictObject({
    hostPath: z
      .string()
      .regex(/^\//, 'must be an absolute path')
      .optional()
      .describe('A directory on the node (a local single-node cluster).'),
    configMap: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a ConfigMap name')
      .max(253)
      .optional()
      .describe(
        "A ConfigMap in the pod's namespace: one key per store document, e.g. payments.yaml for file:payments#field.",
      ),
  })
  .refine((v) => (v.hostPath === undefined) !== (v.configMap === undefined), {
    error: 'give exactly one of hostPath or configMap',
  })
  .describe(
    'Mounts the file store into injected agents (read-only, at fileStore) on a cluster; without it the agent must find fileStore in its own filesystem.',
  );

const settings = {
  fileStore: z
    .string()
    .regex(/^\//, 'must be an absolute path')
    .optional()
    .describe(
      'Directory (or YAML file) of the embedded file store, as the agent sees it; enables file: references. For local runs, the demo and tests.',
    ),
  fileStoreVolume: fileStoreVolumeSchema.optional(),
};

function storeVolume(source: z.infer<typeof fileStoreVolumeSchema>): JsonObject {
  return source.hostPath !== undefined
    ? { name: FILE_STORE_VOLUME, hostPath: { path: source.hostPath, type: 'Directory' } }
    : { name: FILE_STORE_VOLUME, configMap: { name: source.configMap, defaultMode: 0o444 } };
}

export const file = declareProvider({
  name: 'file',
  strictSegments: true,
  versionProblem: () => 'the file provider has no versions; drop "@…"',
  settings,
  flags: {
    'file-store': { path: ['fileStore'], kind: 'string', help: 'enable file: references with this store path' },
  },
  annotations: [],
  docs: { annotationHints: [], missingSettings: 'the file store' },
  reservedVolumes: [],
  unused: () => undefined,
  resolve: ({ settings: { fileStore, fileStoreVolume }, firstFile }, out) => {
    if (fileStore === undefined) {
      out.problems.push({
        code: PROBLEM_CODES.missingSetting,
        annotation: `secret-${firstFile}`,
        message:
          'the file: provider is not enabled on this webhook (its fileStore setting is empty); it is for local runs and tests, use aws: or vault:',
      });
      return undefined;
    }
    const env = [{ name: FILE_STORE_ENV, value: fileStore }];
    if (fileStoreVolume === undefined) return { env };
    return {
      env,
      mounts: [{ name: FILE_STORE_VOLUME, mountPath: fileStore, readOnly: true }],
      volumes: [storeVolume(fileStoreVolume)],
    };
  },
});
