// The providers' generated wiring must match PROVIDERS, as `npm run generate` would write it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatedProviderFiles, staleProviderFiles } from './providers.ts';

void describe('generated provider wiring', () => {
  void it('matches PROVIDERS (run "npm run generate" after changing it)', async () => {
    assert.deepEqual(await staleProviderFiles(), []);
  });

  void it('imports each named provider from its folder, the declaration statically and the agent half lazily', async () => {
    const files = await generatedProviderFiles(['aws', 'gcp']);
    assert.match(
      files.get('injector/providers/registry.generated.ts') ?? '',
      /import \{ gcp \} from '\.\.\/\.\.\/providers\/gcp\/injector\/gcp\.ts';/,
    );
    assert.match(
      files.get('agent/providers/loaders.generated.ts') ?? '',
      /gcp: \(\) => import\('\.\.\/\.\.\/providers\/gcp\/agent\/gcp\.ts'\),/,
    );
  });

  void it('refuses a name that cannot be an identifier, naming it', async () => {
    await assert.rejects(generatedProviderFiles(['aws', 'key-vault']), /PROVIDERS: key-vault is not a lowercase name/);
  });
});
