// Uses the installed st-secrets package as an ES module: HF_TOKEN through the
// chain from the secrets file named by argv[2], with the Promise forms, while
// a timer keeps firing. Prints the provider, never the value.
import { Manager, encryptWithSecretAsync, decryptWithSecretAsync, version } from 'st-secrets';

let ticks = 0;
const timer = setInterval(() => { ticks += 1; }, 1);
const m = new Manager({ file_path: process.argv[2], providers: ['env', 'file'] });
const got = await m.getWithSourceAsync('HF_TOKEN');
if (!got || !got.value) throw new Error('HF_TOKEN not resolved');
if ((await m.getAsync('hf-token')) !== got.value) throw new Error('getAsync disagrees');
const token = await encryptWithSecretAsync('consumer', 'plain'); // key derivation off the loop
if ((await decryptWithSecretAsync('consumer', token)) !== 'plain') throw new Error('round trip failed');
clearInterval(timer);
if (ticks === 0) throw new Error('the event loop did not run during the calls');
m.close();
console.log(`${version} (ESM): HF_TOKEN from ${got.provider} with Promises; the loop ran meanwhile`);
