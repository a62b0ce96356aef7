// Must NOT compile (test/types.test.js): a Promise is not its value, and a
// get may find nothing.
import { Manager } from 'st-secrets';

const m = new Manager();
export const notAwaited: string | undefined = m.getAsync('HF_TOKEN');
export const mayBeUndefined: string = await m.getAsync('HF_TOKEN');
