// Type declarations of the st-secrets Node binding.

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

/** The library's thread-safe TTL cache with exact LRU eviction. */
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

/** A secrets chain (environment > secrets file > AWS Secrets Manager > Vault by default). */
export class Manager {
  /** cfg: the library's configuration keys (the README's table, section "Configuration keys"). */
  constructor(cfg?: Record<string, unknown>);
  /** The process-wide manager, configured from the environment. */
  static default(): Manager;
  /** Drops the process-wide manager; its next use reads the environment again. */
  static resetDefault(): void;
  /** undefined when every provider answered "absent". */
  get(key: string): string | undefined;
  /** get, also naming the provider that answered ('env', 'file', 'aws', 'vault'). */
  getWithSource(key: string): { value: string; provider: string } | undefined;
  set(key: string, value: string): void;
  /** false when the secrets file did not have the key. */
  delete(key: string): boolean;
  clearCache(): void;
  providers(): ProviderInfo[];
  /** providers() with each provider's live checks under `checks` (null for env and file). */
  diagnose(): Array<ProviderInfo & { checks: Record<string, unknown> | null }>;
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
  close(): void;
}

export function providerConfigCache(): Cache;
export function userPermissionCache(): Cache;
export function invalidateProviderCache(provider: string): number;
export function invalidateUserCache(userId: number | bigint): number;
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
