// Lazy provider loading: each backend module (and its SDK: the AWS SDK, node-vault, chokidar) is imported only
// when a file references that provider, so a pod pays in memory and start time only for what it uses. The
// loaders are generated from PROVIDERS (scripts/providers.ts).
import type { Provider } from '../../injector/reference.ts';
import type { ProviderDeps, SecretProvider } from '../provider.ts';
import { LOADERS } from './loaders.generated.ts';

export async function loadProvider(name: Provider, deps: ProviderDeps): Promise<SecretProvider> {
  const module = await LOADERS[name]();
  return module.createProvider(deps);
}
