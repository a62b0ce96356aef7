// Type declarations of the st-secrets Node binding (the CommonJS entry;
// index.d.mts re-exports them for the ESM one).
//
// Every `...Async` method is the Promise form of the method without the
// suffix: it runs on a worker thread of libuv's pool, so the event loop keeps
// running, and rejects with the StSecretsError the other would throw.

/** The loaded library's version text, e.g. "st-secrets/0.1.0 (...)". */
export const version: string;
/** Result codes by name, read from the library: { ST_NOT_FOUND: 1, ... }. */
export const codes: Readonly<Record<string, number>>;

/** A library failure; the message never contains a secret. */
export class StSecretsError extends Error {
  /** The code's name, e.g. "ST_AUTH". */
  readonly code: string;
  /** The st_result number, e.g. 303. */
  readonly number: number;
}

export interface CacheOptions {
  /** Seconds; default 300. */
  defaultTtl?: number;
  /** Entries; default 1,000. */
  maxSize?: number;
  /** Seconds; default 60. */
  cleanupInterval?: number;
}

export interface CacheStats {
  size: number;
  maxSize: number;
  expiredCount: number;
  defaultTtl: number;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
}

/** The library's thread-safe TTL cache with LRU eviction (exact for each thread's own operations). */
export class Cache {
  constructor(options?: CacheOptions);
  /** The value, or undefined when absent or expired. */
  get(key: string): Buffer | undefined;
  set(key: string, value: Buffer | string): void;
  /** ttl in seconds: 0 = already expired, Infinity = never. */
  setTtl(key: string, value: Buffer | string, ttl: number): void;
  /** The value, or fn()'s, stored; fn runs once per key at a time. */
  getOrSet(key: string, fn: () => Buffer | string): Buffer;
  delete(key: string): boolean;
  clear(): number;
  invalidatePrefix(prefix: string): number;
  /** Removes the expired entries now; returns how many. */
  cleanup(): number;
  stats(): CacheStats;
  /** Frees the native cache now (a finalizer is the backstop). */
  close(): void;
}

export interface ProviderInfo {
  name: string;
  available: boolean;
  detail: string;
  warnings: string[];
  last_error: { code: string; message: string } | null;
}

/** A key whose value changed (Manager.onChange): never the value. */
export interface Change {
  key: string;
  /** 'mounted', 'file', 'aws', 'gcp', 'azure', 'vault'. */
  provider: string;
  /** The remote secret's version now held; null for the file and KV v1. */
  version: string | null;
  stages: string[];
  /** The version reported failed that this one stands in for (reportFailure); absent otherwise. */
  insteadOf?: string;
  /** The key is gone from that provider. */
  removed: boolean;
}

/** What reportFailure holds now: the value, its provider and version, and whether it changed. */
export interface Reported {
  value: string;
  provider: string;
  version: string | null;
  stages: string[];
  /** The version reported failed that this one stands in for; absent when it is the version in force. */
  insteadOf?: string;
  changed: boolean;
}

/** A secrets chain (environment > secrets file > AWS Secrets Manager > Vault by default). */
export class Manager {
  /** cfg: the library's configuration keys (docs/configuration.md, section "Configuration keys"). */
  constructor(cfg?: Record<string, unknown>);
  /** The process-wide manager, configured from the environment. */
  static default(): Manager;
  /** Drops the process-wide manager; its next use reads the environment again. */
  static resetDefault(): void;
  /** undefined when every provider answered "absent". */
  get(key: string): string | undefined;
  /** data with every served secret value (and with REDACT_HELD every value the providers hold) concealed, raw and encoded. */
  redact<T extends Buffer | string>(data: T, flags?: number): T;
  /** A Transform stream concealing what redact conceals, also a value split across chunks. */
  createRedactStream(flags?: number): import('node:stream').Transform;
  /** get, also naming the provider that answered ('env', 'mounted', 'file', 'aws', 'gcp', 'azure', 'vault'). */
  getWithSource(key: string): { value: string; provider: string } | undefined;
  /** The value, its provider and the remote secret's version (null for env, file, KV v1). */
  getWithVersion(key: string): { value: string; provider: string; version: string | null; stages: string[] } | undefined;
  set(key: string, value: string): void;
  /** false when the secrets file did not have the key. */
  delete(key: string): boolean;
  clearCache(): void;
  providers(): ProviderInfo[];
  /** The remote providers' counters (the process's), by provider; never a key or a value. */
  metrics(): Record<string, { requests: Array<{ operation: string; method: string; outcome: string;
    count: number; seconds: number; buckets: number[] }> } & Record<string, unknown>>;
  /** Which version of each secret was used, with a fingerprint of each value (never the value). */
  provenance(): Array<{ key: string; provider: string; version: string | null; stages: string[];
    fingerprint: string; first_used: string; last_used: string; instead_of?: string }>;
  /** providers() with each provider's live checks under `checks` (null for env and file). */
  diagnose(): Array<ProviderInfo & { checks: Record<string, unknown> | null }>;
  /** Writes a job's secrets as new 0600 files in dir (on tmpfs); the variables its processes get, in order. */
  writeFiles(names: string, dir: string, layout?: 'files' | 'refs', uid?: number, gid?: number): Record<string, string>;
  /** Rewrites the files of short-lived credentials (a token exchange's) that changed; next_in: seconds, or null. */
  refreshFiles(names: string, dir: string, layout?: 'files' | 'refs'): { rewritten: string[]; next_in: number | null };
  /** Revokes what a job's ledger lists; never a value, a token or a lease ID in the report. */
  revokeLedger(path: string): { leases: number; tokens: number; failed: string[]; entity: 'disabled' | 'disabled already' | null };
  /** Concurrent calls for one key wait for one remote request. */
  getAsync(key: string): Promise<string | undefined>;
  getWithSourceAsync(key: string): Promise<{ value: string; provider: string } | undefined>;
  /** Reads key again now ("this value failed me"); changed: it differs from what was held. */
  refresh(key: string): { value: string; changed: boolean } | undefined;
  refreshAsync(key: string): Promise<{ value: string; changed: boolean } | undefined>;
  /** "This value failed me": the version (as getWithVersion gave it; omitted: the version held) was refused. */
  reportFailure(key: string, version?: string | null): Reported | undefined;
  reportFailureAsync(key: string, version?: string | null): Promise<Reported | undefined>;
  /** Calls fn with each key whose value changes (never the value); returns the listener's id. */
  onChange(fn: (change: Change) => void): number;
  /** Unregisters a listener; throws ST_NOT_FOUND for an unknown id. */
  removeListener(id: number): void;
  getWithVersionAsync(key: string): Promise<{ value: string; provider: string; version: string | null; stages: string[] } | undefined>;
  setAsync(key: string, value: string): Promise<void>;
  deleteAsync(key: string): Promise<boolean>;
  providersAsync(): Promise<ProviderInfo[]>;
  diagnoseAsync(): Promise<Array<ProviderInfo & { checks: Record<string, unknown> | null }>>;
  /** Frees the manager now, or after the asynchronous calls running on it. */
  close(): void;
}

/** An open provider-configuration store (SQLite). */
export class Store {
  /** dbPath: undefined for <state dir>/cloud/jobs.db. */
  constructor(dbPath?: string);
  getProviderConfig(provider: string): Record<string, unknown>;
  saveProviderConfig(provider: string, config: Record<string, unknown>): void;
  /** A JSON merge patch (null removes a key), applied atomically. */
  mergeProviderConfig(provider: string, patch: Record<string, unknown>): Record<string, unknown>;
  setCredential(provider: string, name: string, value: string): void;
  getCredential(provider: string, name: string): string | undefined;
  deleteCredential(provider: string, name: string): boolean;
  rotateCredentials(): { rotated: number; current: number; failed: number };
  auditEntries(limit?: number): Array<{ id: number; at: string; action: string; provider: string; subject: string; detail: string }>;
  /** The number of entries; throws StSecretsError (ST_STORE) naming the first broken one. */
  verifyAudit(): number;
  /** Opens (creating or migrating) the database off the event loop. */
  static open(dbPath?: string): Promise<Store>;
  getProviderConfigAsync(provider: string): Promise<Record<string, unknown>>;
  saveProviderConfigAsync(provider: string, config: Record<string, unknown>): Promise<void>;
  mergeProviderConfigAsync(provider: string, patch: Record<string, unknown>): Promise<Record<string, unknown>>;
  setCredentialAsync(provider: string, name: string, value: string): Promise<void>;
  getCredentialAsync(provider: string, name: string): Promise<string | undefined>;
  deleteCredentialAsync(provider: string, name: string): Promise<boolean>;
  rotateCredentialsAsync(): Promise<{ rotated: number; current: number; failed: number }>;
  auditEntriesAsync(limit?: number): Promise<Array<{ id: number; at: string; action: string; provider: string; subject: string; detail: string }>>;
  verifyAuditAsync(): Promise<number>;
  /** Closes the database now, or after the asynchronous calls running on it. */
  close(): void;
}

export function providerConfigCache(): Cache;
export function userPermissionCache(): Cache;
export function invalidateProviderCache(provider: string): number;
export function invalidateUserCache(userId: number | bigint): number;
/** Flag of redact and createRedactStream: also every value the providers hold now. */
export const REDACT_HELD: 1;
/** Manager.default().redact(data, flags). */
export function redact<T extends Buffer | string>(data: T, flags?: number): T;
/** Manager.default().createRedactStream(flags). */
export function createRedactStream(flags?: number): import('node:stream').Transform;
export function encrypt(plaintext: string): string;
export function decrypt(ciphertext: string): string;
export function encryptWithSecret(secret: string, plaintext: string): string;
export function decryptWithSecret(secret: string, ciphertext: string): string;
export function reencrypt(ciphertext: string): string;
export function resetCrypto(): void;
export function hardwareInfo(store?: Store): Record<string, { name?: string; cost_per_second: number }>;
export function setHardwareInfo(info: Record<string, { name?: string; cost_per_second: number }>): void;
export function clearHardwareInfoCache(): void;
/** $/hour of `hardware` (default gpu-l40s). */
export function hourlyCost(hardware?: string, store?: Store): number;
export function encryptAsync(plaintext: string): Promise<string>;
export function decryptAsync(ciphertext: string): Promise<string>;
export function encryptWithSecretAsync(secret: string, plaintext: string): Promise<string>;
export function decryptWithSecretAsync(secret: string, ciphertext: string): Promise<string>;
export function reencryptAsync(ciphertext: string): Promise<string>;
export function hardwareInfoAsync(store?: Store): Promise<Record<string, { name?: string; cost_per_second: number }>>;
export function setHardwareInfoAsync(info: Record<string, { name?: string; cost_per_second: number }>): Promise<void>;
export function hourlyCostAsync(hardware?: string, store?: Store): Promise<number>;
