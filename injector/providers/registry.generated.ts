// Generated from PROVIDERS (injector/providers/names.ts) by scripts/providers.ts: do not edit, run `npm run generate`.
// Each declaration (providers/<name>/injector/<name>.ts exports `<name>`), imported statically: the webhook
// uses every one. The compiler checks the entries against PROVIDERS, both ways.
import type { Provider } from './names.ts';
import { aws } from '../../providers/aws/injector/aws.ts';
import { vault } from '../../providers/vault/injector/vault.ts';
import { file } from '../../providers/file/injector/file.ts';
export const REGISTRY = { aws, vault, file } as const satisfies Record<Provider, { readonly name: Provider }>;
