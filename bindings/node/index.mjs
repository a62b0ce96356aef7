// The ESM entry: `import { Manager } from 'st-secrets'`. The binding is one
// CommonJS module (index.js); this re-exports its exports by name, and the
// module itself as the default export. test/esm.test.mjs checks that the two
// lists are one.
import st from './index.js';

export const {
  version,
  codes,
  StSecretsError,
  Manager,
  Cache,
  Store,
  providerConfigCache,
  userPermissionCache,
  invalidateProviderCache,
  invalidateUserCache,
  encrypt,
  decrypt,
  encryptWithSecret,
  decryptWithSecret,
  reencrypt,
  resetCrypto,
  hardwareInfo,
  setHardwareInfo,
  clearHardwareInfoCache,
  hourlyCost,
  REDACT_HELD,
  redact,
  createRedactStream,
  encryptAsync,
  decryptAsync,
  encryptWithSecretAsync,
  decryptWithSecretAsync,
  reencryptAsync,
  hardwareInfoAsync,
  setHardwareInfoAsync,
  hourlyCostAsync,
} = st;

export default st;
