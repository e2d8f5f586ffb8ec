// Lazy provider loading: each backend module (and its SDK: the AWS SDK, node-vault, chokidar) is imported only
// when a file references that provider, so a pod pays in memory and start time only for what it uses.
import type { Provider } from '../../injector/reference.ts';
import type { ProviderDeps, ProviderFactory, SecretProvider } from '../provider.ts';

const MODULES: Readonly<Record<Provider, () => Promise<{ createProvider: ProviderFactory }>>> = {
  aws: () => import('../../providers/aws/agent/aws.ts'),
  vault: () => import('../../providers/vault/agent/vault.ts'),
  file: () => import('../../providers/file/agent/file.ts'),
};

export async function loadProvider(name: Provider, deps: ProviderDeps): Promise<SecretProvider> {
  const module = await MODULES[name]();
  return module.createProvider(deps);
}
