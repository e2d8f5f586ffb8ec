// The secret reference grammar shared by admission (validation, reference-parse.ts) and the agent (fetching):
//   <provider>:<path>[#<field>][@<version>]
// aws:prod/db#password, aws:arn:aws:secretsmanager:us-east-1:123:secret:prod/db-AbCdEf, aws:prod/db@AWSPREVIOUS,
// vault:secret/payments/db#password, vault:database/creds/readonly, file:payments/db#password

import type { Provider } from './providers/names.ts';

export type { Provider };

export interface SecretReference {
  readonly provider: Provider;
  readonly path: string;
  readonly field?: string;
  readonly version?: string;
}

/** The reference written back as text (for logs and metrics: it names a path, never a value); also takes the agent config's `ref`. */
export function formatReference(ref: { readonly provider: Provider; readonly path: string; readonly field?: string | undefined; readonly version?: string | undefined }): string {
  return `${ref.provider}:${ref.path}${ref.field === undefined ? '' : `#${ref.field}`}${ref.version === undefined ? '' : `@${ref.version}`}`;
}
