package stsecrets

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// The binding benchmark's workload: a hot-key get, 32-byte key, 64-byte
// value, 1,000 entries. The usual Go choice for comparison is a sync.Map
// holding values with an expiry time, checked on each get.

const benchKey = "provider:replicate:conf:00000500"

var benchValue = make([]byte, 64)

// newBenchCache is the workload's cache: 1,000 entries, room for 2,000.
func newBenchCache(b *testing.B) *Cache {
	c, err := NewCache(300*time.Second, 2000, DefaultTTL)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		_ = c.Set(fmt.Sprintf("provider:replicate:conf:%08d", i), benchValue)
	}
	return c
}

func BenchmarkCacheGetBinding(b *testing.B) {
	c := newBenchCache(b)
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v, err := c.Get(benchKey); err != nil || len(v) != 64 {
			b.Fatal(err)
		}
	}
}

type expiring struct {
	value   []byte
	expires time.Time
}

func BenchmarkCacheGetSyncMapExpiry(b *testing.B) {
	var m sync.Map
	for i := 0; i < 1000; i++ {
		m.Store(fmt.Sprintf("provider:replicate:conf:%08d", i), expiring{benchValue, time.Now().Add(300 * time.Second)})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, ok := m.Load(benchKey)
		if !ok || time.Now().After(e.(expiring).expires) {
			b.Fatal("miss")
		}
		if len(e.(expiring).value) != 64 {
			b.Fatal("value")
		}
	}
}

// The same hot-key get from every core at once (b.RunParallel: GOMAXPROCS
// goroutines), as a launcher's loader threads or request handlers read a
// few keys together: the cache's reads share its lock.
func BenchmarkCacheGetParallelBinding(b *testing.B) {
	c := newBenchCache(b)
	defer c.Close()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := c.Get(benchKey); err != nil || len(v) != 64 {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCacheGetParallelSyncMapExpiry(b *testing.B) {
	var m sync.Map
	for i := 0; i < 1000; i++ {
		m.Store(fmt.Sprintf("provider:replicate:conf:%08d", i), expiring{benchValue, time.Now().Add(300 * time.Second)})
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e, ok := m.Load(benchKey)
			if !ok || time.Now().After(e.(expiring).expires) || len(e.(expiring).value) != 64 {
				b.Fatal("miss")
			}
		}
	})
}
