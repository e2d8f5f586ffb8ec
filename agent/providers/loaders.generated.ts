// Generated from PROVIDERS (injector/providers/names.ts) by scripts/providers.ts: do not edit, run `npm run generate`.
// Each fetch module (providers/<name>/agent/<name>.ts exports `createProvider`), imported on first use: a pod
// loads only the providers (and their SDKs) its files reference.
import type { Provider } from '../../injector/providers/names.ts';
import type { ProviderFactory } from '../provider.ts';
export const LOADERS: Readonly<Record<Provider, () => Promise<{ createProvider: ProviderFactory }>>> = {
  aws: () => import('../../providers/aws/agent/aws.ts'),
  vault: () => import('../../providers/vault/agent/vault.ts'),
  file: () => import('../../providers/file/agent/file.ts'),
};
