package stsecrets

/*
#include <stdint.h>
#include "st_secrets.h"

extern st_result goStCompute(void *user_data, char *key, st_sink *sink);

static st_result st_go_compute(void *user_data, const char *key, st_sink *sink) {
	return goStCompute(user_data, (char *)key, sink);
}

static st_result st_go_get_or_set(st_cache *c, const char *key, uintptr_t handle, double ttl,
                                  st_buf **out, st_error **err) {
	return st_cache_get_or_set(c, key, st_go_compute, (void *)handle, ttl, out, err);
}
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Cache is the library's thread-safe TTL cache with LRU eviction (exact for
// each thread's own operations; gets run in parallel):
// byte values, per-key TTLs, single-flight GetOrSet, hit/miss counters.
type Cache struct {
	mu     sync.Mutex
	h      *C.st_cache
	global bool
}

// Stats is a snapshot of a cache's sizes and counters.
type Stats struct {
	Size, MaxSize, ExpiredCount          int
	DefaultTTL                           time.Duration
	Hits, Misses, Evictions, Expirations uint64
}

// DefaultTTL, as a TTL argument, means the cache's default TTL.
const DefaultTTL time.Duration = -1

func seconds(d time.Duration) C.double {
	if d < 0 {
		return -1
	}
	return C.double(d.Seconds())
}

// NewCache makes a cache. Negative durations and a maxSize of 0 mean the
// defaults (300 s, 1,000 entries, 60 s).
func NewCache(defaultTTL time.Duration, maxSize int, cleanupInterval time.Duration) (*Cache, error) {
	if maxSize < 0 {
		maxSize = 0
	}
	var h *C.st_cache
	var err *C.st_error
	if rc := C.st_cache_new(seconds(defaultTTL), C.size_t(maxSize), seconds(cleanupInterval), &h, &err); rc != C.ST_OK {
		return nil, failure(rc, err)
	}
	c := &Cache{h: h}
	runtime.SetFinalizer(c, (*Cache).Close)
	return c, nil
}

var (
	providerConfigCache = &Cache{h: C.st_provider_config_cache(), global: true}
	userPermissionCache = &Cache{h: C.st_user_permission_cache(), global: true}
)

// ProviderConfigCache is the process-wide provider-config cache (300 s, 100).
func ProviderConfigCache() *Cache { return providerConfigCache }

// UserPermissionCache is the process-wide user-permission cache (60 s, 500).
func UserPermissionCache() *Cache { return userPermissionCache }

// InvalidateProviderCache drops the provider's entries ("provider:<p>:").
func InvalidateProviderCache(provider string) int {
	p, free, cerr := cstring("provider", provider)
	if cerr != nil {
		return 0
	}
	defer free()
	return int(C.st_invalidate_provider_cache(p))
}

// InvalidateUserCache drops the user's entries ("user:<id>:").
func InvalidateUserCache(userID int64) int {
	return int(C.st_invalidate_user_cache(C.int64_t(userID)))
}

// handle returns the live handle, or nil after Close.
func (c *Cache) handle() *C.st_cache {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h
}

// Close frees the cache (process-wide caches are never freed). Idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h != nil && !c.global {
		C.st_cache_free(c.h)
		c.h = nil
	}
	return nil
}

// Get returns a copy of the live value of key, or ErrNotFound. One cgo call
// in the common case: the value is copied into a buffer of this call's.
func (c *Cache) Get(key string) ([]byte, error) {
	// The key as a C string in a buffer of this call (no malloc for the usual
	// short keys).
	var keyBuf [128]byte
	var k *C.char
	if len(key) < len(keyBuf) {
		copy(keyBuf[:], key)
		k = (*C.char)(unsafe.Pointer(&keyBuf[0]))
	} else {
		var free func()
		var cerr error
		k, free, cerr = cstring("key", key)
		if cerr != nil {
			return nil, cerr
		}
		defer free()
	}
	var small [256]byte
	buf := small[:]
	for {
		var n C.size_t
		var err *C.st_error
		rc := C.st_cache_get_into(c.handle(), k, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &err)
		runtime.KeepAlive(c)
		if rc != C.ST_OK {
			return nil, failure(rc, err)
		}
		if int(n) <= len(buf) {
			return append([]byte(nil), buf[:n]...), nil
		}
		buf = make([]byte, int(n))
	}
}

// Set stores a copy of value under key with the default TTL.
func (c *Cache) Set(key string, value []byte) error { return c.SetTTL(key, value, DefaultTTL) }

// SetTTL stores a copy of value for ttl (DefaultTTL: the cache's; 0: already
// expired, nothing stored).
func (c *Cache) SetTTL(key string, value []byte, ttl time.Duration) error {
	k, free, cerr := cstring("key", key)
	if cerr != nil {
		return cerr
	}
	defer free()
	var data *C.uint8_t
	if len(value) > 0 {
		data = (*C.uint8_t)(unsafe.Pointer(&value[0]))
	}
	var err *C.st_error
	rc := C.st_cache_set(c.handle(), k, data, C.size_t(len(value)), seconds(ttl), &err)
	runtime.KeepAlive(c)
	runtime.KeepAlive(value)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// GetOrSet returns the live value of key, or computes it with fn and stores
// it (default TTL). While one goroutine computes a key, others asking for it
// wait for that result, so fn runs once. An error from fn is returned as it
// is and nothing is stored (waiters get an ErrCallback).
func (c *Cache) GetOrSet(key string, fn func() ([]byte, error)) ([]byte, error) {
	k, free, cerr := cstring("key", key)
	if cerr != nil {
		return nil, cerr
	}
	defer free()
	state := &computeState{fn: fn}
	handle := cgo.NewHandle(state)
	defer handle.Delete()
	var out *C.st_buf
	var err *C.st_error
	rc := C.st_go_get_or_set(c.handle(), k, C.uintptr_t(handle), -1, &out, &err)
	runtime.KeepAlive(c)
	if rc != C.ST_OK {
		if state.err != nil {
			if err != nil {
				C.st_error_free(err)
			}
			return nil, state.err
		}
		return nil, failure(rc, err)
	}
	return takeBuf(out), nil
}

// Delete removes key; true when a live entry was removed.
func (c *Cache) Delete(key string) bool {
	k, free, cerr := cstring("key", key)
	if cerr != nil {
		return false
	}
	defer free()
	defer runtime.KeepAlive(c)
	return bool(C.st_cache_delete(c.handle(), k))
}

// Clear removes every entry; returns how many were live.
func (c *Cache) Clear() int {
	defer runtime.KeepAlive(c)
	return int(C.st_cache_clear(c.handle()))
}

// Cleanup removes the expired entries now (they are otherwise swept lazily)
// and returns how many it removed.
func (c *Cache) Cleanup() int {
	defer runtime.KeepAlive(c)
	return int(C.st_cache_cleanup(c.handle()))
}

// InvalidatePrefix removes the entries whose key starts with prefix.
func (c *Cache) InvalidatePrefix(prefix string) int {
	p, free, cerr := cstring("prefix", prefix)
	if cerr != nil {
		return 0
	}
	defer free()
	defer runtime.KeepAlive(c)
	return int(C.st_cache_invalidate_prefix(c.handle(), p))
}

// Stats returns the cache's sizes and counters.
func (c *Cache) Stats() (Stats, error) {
	var s C.st_cache_stats
	s.struct_size = C.size_t(unsafe.Sizeof(s))
	var err *C.st_error
	rc := C.st_cache_stats_get(c.handle(), &s, &err)
	runtime.KeepAlive(c)
	if rc != C.ST_OK {
		return Stats{}, failure(rc, err)
	}
	return Stats{
		Size: int(s.size), MaxSize: int(s.max_size), ExpiredCount: int(s.expired_count),
		DefaultTTL: time.Duration(float64(s.default_ttl) * float64(time.Second)),
		Hits:       uint64(s.hits), Misses: uint64(s.misses),
		Evictions: uint64(s.evictions), Expirations: uint64(s.expirations),
	}, nil
}
