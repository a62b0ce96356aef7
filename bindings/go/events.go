package stsecrets

/*
#include <stdint.h>
#include <stdlib.h>
#include "st_secrets.h"

extern void goStChange(void *user_data, char *key, char *info);
extern void goStRelease(void *user_data);

static void st_go_change(void *user_data, const char *key, const char *info) {
	goStChange(user_data, (char *)key, (char *)info);
}

static void st_go_release(void *user_data) { goStRelease(user_data); }

static st_result st_go_on_change(st_secrets *m, void *handle, uint64_t *id, st_error **err) {
	return st_secrets_on_change(m, st_go_change, st_go_release, handle, id, err);
}
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// Change is a key whose value, as the manager serves it, changed: never the
// value (read it with Get).
type Change struct {
	// Key as its source spells it.
	Key string
	// Provider holding it: "mounted", "file", "aws", "gcp", "azure", "vault".
	Provider string
	// Version of the remote secret now held ("" for the file, a KV v1 secret).
	Version string
	// Stages of that version (AWS).
	Stages []string
	// InsteadOf: the version in force that was reported failed, when this
	// version stands in for it (ReportFailure); "" otherwise.
	InsteadOf string
	// Removed: the key is gone from that provider.
	Removed bool
}

func parseChange(key, info string) (Change, error) {
	var raw struct {
		Provider string   `json:"provider"`
		Version  *string  `json:"version"`
		Stages   []string `json:"stages"`
		Instead  string   `json:"instead_of"`
		Removed  bool     `json:"removed"`
	}
	if err := json.Unmarshal([]byte(info), &raw); err != nil {
		return Change{}, err
	}
	c := Change{Key: key, Provider: raw.Provider, Stages: raw.Stages, InsteadOf: raw.Instead, Removed: raw.Removed}
	if raw.Version != nil {
		c.Version = *raw.Version
	}
	return c, nil
}

// OnChange registers fn, called with each key whose value changes (a remote
// secret refreshed or rotated, the secrets file rewritten), on the thread
// that noticed it: a caller of Get or Refresh, or the library's refresher
// thread, which while a listener is registered also watches without gets.
// fn may call the manager; it should return soon. The id is for
// RemoveListener.
func (m *Manager) OnChange(fn func(Change)) (uint64, error) {
	h, herr := m.handle()
	if herr != nil {
		return 0, herr
	}
	// The handle lives in C memory (the library keeps the pointer), freed
	// by goStRelease when the listener is gone for good.
	slot := (*cgo.Handle)(C.malloc(C.size_t(unsafe.Sizeof(cgo.Handle(0)))))
	*slot = cgo.NewHandle(fn)
	var id C.uint64_t
	var cerr *C.st_error
	rc := C.st_go_on_change(h, unsafe.Pointer(slot), &id, &cerr)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		slot.Delete()
		C.free(unsafe.Pointer(slot))
		return 0, failure(rc, cerr)
	}
	return uint64(id), nil
}

// RemoveListener unregisters listener id: no call of it starts after this
// returns (one running on another thread ends on its own).
func (m *Manager) RemoveListener(id uint64) error {
	h, herr := m.handle()
	if herr != nil {
		return herr
	}
	var cerr *C.st_error
	rc := C.st_secrets_remove_listener(h, C.uint64_t(id), &cerr)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return failure(rc, cerr)
	}
	return nil
}
