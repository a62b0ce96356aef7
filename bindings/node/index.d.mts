// Type declarations of the ESM entry (index.mjs): the same exports as the
// CommonJS entry's (index.d.ts), and the module as the default export.
export * from './index.js';
import * as st from './index.js';
export default st;
