// Compiled by test/types.test.js with tsc --strict: the CommonJS entry's types.
import st = require('st-secrets');

export async function main(): Promise<string | undefined> {
  const m = new st.Manager();
  const c = new st.Cache({ defaultTtl: 60 });
  const b: Buffer | undefined = c.get('k');
  const plain: string = await st.decryptAsync(await st.reencryptAsync('x'));
  return b === undefined ? plain : m.getAsync('HF_TOKEN');
}
