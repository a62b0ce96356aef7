// Compiled by test/types.test.js with tsc --strict: the ESM entry's types.
import st, { Manager, Store, StSecretsError, encryptAsync } from 'st-secrets';

export async function main(): Promise<number> {
  const m = new Manager({ providers: ['env'] });
  const value: string | undefined = await m.getAsync('HF_TOKEN');
  const sourced = await m.getWithSourceAsync('HF_TOKEN');
  const provider: string | undefined = sourced?.provider;
  await m.setAsync('k', 'v');
  const removed: boolean = await m.deleteAsync('k');
  const names: string[] = (await m.providersAsync()).map((p) => p.name);
  const store: Store = await Store.open();
  const config: Record<string, unknown> = await store.getProviderConfigAsync('replicate');
  const entries: number = await store.verifyAuditAsync();
  const cost: number = await st.hourlyCostAsync('gpu-l40s', store);
  const token: string = await encryptAsync('plain');
  try {
    m.get('x');
  } catch (e) {
    if (e instanceof StSecretsError) return e.number;
  }
  return [value, provider, removed, names, config, entries, cost, token].length;
}
