package stsecrets

/*
#include "st_secrets.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
)

// Store is an open provider-configuration store (SQLite). Close it when done.
type Store struct {
	mu sync.Mutex
	h  *C.st_store
}

// OpenStore opens the database at path ("" for <state dir>/cloud/jobs.db).
func OpenStore(path string) (*Store, error) {
	var p *C.char
	if path != "" {
		var free func()
		var cerr error
		p, free, cerr = cstring("path", path)
		if cerr != nil {
			return nil, cerr
		}
		defer free()
	}
	var h *C.st_store
	var err *C.st_error
	if rc := C.st_store_open(p, &h, &err); rc != C.ST_OK {
		return nil, failure(rc, err)
	}
	s := &Store{h: h}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// Close closes the store. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.st_store_free(s.h)
		s.h = nil
	}
	return nil
}

func (s *Store) handle() *C.st_store {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h
}

func (s *Store) bufCall(fn func(h *C.st_store, out **C.st_buf, err **C.st_error) C.st_result) ([]byte, error) {
	var out *C.st_buf
	var err *C.st_error
	rc := fn(s.handle(), &out, &err)
	runtime.KeepAlive(s)
	if rc != C.ST_OK {
		return nil, failure(rc, err)
	}
	return takeBuf(out), nil
}

// ProviderConfig returns the provider's configuration (cached, 5 minutes).
func (s *Store) ProviderConfig(provider string) (map[string]any, error) {
	p, free, cerr := cstring("provider", provider)
	if cerr != nil {
		return nil, cerr
	}
	defer free()
	raw, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_store_get_provider_config(h, p, o, e)
	})
	return decodeObject(raw, err)
}

// SaveProviderConfig replaces the provider's configuration (audited).
func (s *Store) SaveProviderConfig(provider string, config map[string]any) error {
	raw, jerr := json.Marshal(config)
	if jerr != nil {
		return &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: jerr.Error()}
	}
	p, freeP, cerr := cstring("provider", provider)
	if cerr != nil {
		return cerr
	}
	defer freeP()
	c, freeC, cerr := cstring("config", string(raw))
	if cerr != nil {
		return cerr
	}
	defer freeC()
	var err *C.st_error
	rc := C.st_store_save_provider_config(s.handle(), p, c, &err)
	runtime.KeepAlive(s)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// MergeProviderConfig applies a JSON merge patch atomically (nil removes a
// key) and returns the new configuration.
func (s *Store) MergeProviderConfig(provider string, patch map[string]any) (map[string]any, error) {
	raw, jerr := json.Marshal(patch)
	if jerr != nil {
		return nil, &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: jerr.Error()}
	}
	p, freeP, cerr := cstring("provider", provider)
	if cerr != nil {
		return nil, cerr
	}
	defer freeP()
	c, freeC, cerr := cstring("config", string(raw))
	if cerr != nil {
		return nil, cerr
	}
	defer freeC()
	out, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_store_merge_provider_config(h, p, c, o, e)
	})
	return decodeObject(out, err)
}

// SetCredential stores a credential encrypted at rest.
func (s *Store) SetCredential(provider, name, value string) error {
	p, freeP, cerr := cstring("provider", provider)
	if cerr != nil {
		return cerr
	}
	defer freeP()
	n, freeN, cerr := cstring("name", name)
	if cerr != nil {
		return cerr
	}
	defer freeN()
	v, freeV, cerr := cstring("value", value)
	if cerr != nil {
		return cerr
	}
	defer freeV()
	var err *C.st_error
	rc := C.st_store_set_credential(s.handle(), p, n, v, &err)
	runtime.KeepAlive(s)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// Credential returns a stored credential, decrypted; ErrNotFound if absent.
func (s *Store) Credential(provider, name string) (string, error) {
	p, freeP, cerr := cstring("provider", provider)
	if cerr != nil {
		return "", cerr
	}
	defer freeP()
	n, freeN, cerr := cstring("name", name)
	if cerr != nil {
		return "", cerr
	}
	defer freeN()
	out, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_store_get_credential(h, p, n, o, e)
	})
	return string(out), err
}

// DeleteCredential deletes a stored credential; ErrNotFound if absent.
func (s *Store) DeleteCredential(provider, name string) error {
	p, freeP, cerr := cstring("provider", provider)
	if cerr != nil {
		return cerr
	}
	defer freeP()
	n, freeN, cerr := cstring("name", name)
	if cerr != nil {
		return cerr
	}
	defer freeN()
	var err *C.st_error
	rc := C.st_store_delete_credential(s.handle(), p, n, &err)
	runtime.KeepAlive(s)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// VerifyAudit checks the audit chain; returns the number of entries, or an
// ErrStore naming the first broken entry.
func (s *Store) VerifyAudit() (int, error) {
	out, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_store_audit_verify(h, o, e)
	})
	if err != nil {
		return 0, err
	}
	var report struct {
		Entries int `json:"entries"`
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil {
		return 0, &Error{Code: ErrInternal.Code, Name: ErrInternal.Name, Message: jerr.Error()}
	}
	return report.Entries, nil
}

// HardwareInfo returns the hardware pricing (s may be nil: defaults).
func HardwareInfo(s *Store) (map[string]any, error) {
	raw, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_hardware_info_json(h, o, e)
	})
	return decodeObject(raw, err)
}

// HourlyCost returns the hourly cost of hardware ("" for gpu-l40s).
func HourlyCost(s *Store, hardware string) (float64, error) {
	var hw *C.char
	if hardware != "" {
		var free func()
		var cerr error
		hw, free, cerr = cstring("hardware", hardware)
		if cerr != nil {
			return 0, cerr
		}
		defer free()
	}
	var cost C.double
	var err *C.st_error
	rc := C.st_hardware_hourly_cost(s.handle(), hw, &cost, &err)
	runtime.KeepAlive(s)
	if rc != C.ST_OK {
		return 0, failure(rc, err)
	}
	return float64(cost), nil
}

func decodeObject(raw []byte, err error) (map[string]any, error) {
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if jerr := json.Unmarshal(raw, &m); jerr != nil {
		return nil, &Error{Code: ErrInternal.Code, Name: ErrInternal.Name, Message: jerr.Error()}
	}
	return m, nil
}

// RotateCredentials re-encrypts every stored credential under the current
// key (after SIMPLETUNER_CREDENTIAL_KEY changed, with the old one in
// SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS); returns the library's counts.
func (s *Store) RotateCredentials() (map[string]any, error) {
	raw, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_store_rotate_credentials(h, o, e)
	})
	return decodeObject(raw, err)
}

// AuditEntries returns the newest audit entries, at most limit, newest first.
func (s *Store) AuditEntries(limit int) ([]map[string]any, error) {
	if limit < 0 {
		return nil, &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: "limit is negative"}
	}
	raw, err := s.bufCall(func(h *C.st_store, o **C.st_buf, e **C.st_error) C.st_result {
		return C.st_store_audit_json(h, C.size_t(limit), o, e)
	})
	if err != nil {
		return nil, err
	}
	var list []map[string]any
	if jerr := json.Unmarshal(raw, &list); jerr != nil {
		return nil, &Error{Code: ErrInternal.Code, Name: ErrInternal.Name, Message: jerr.Error()}
	}
	return list, nil
}

// SetHardwareInfo sets the hardware pricing for the next 5 minutes
// (process-wide): {"<id>": {"name": ..., "cost_per_second": ...}}, each
// cost a non-negative number.
func SetHardwareInfo(info map[string]any) error {
	raw, jerr := json.Marshal(info)
	if jerr != nil {
		return &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: jerr.Error()}
	}
	text, free, cerr := cstring("config", string(raw))
	if cerr != nil {
		return cerr
	}
	defer free()
	var err *C.st_error
	if rc := C.st_hardware_info_set(text, &err); rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// ClearHardwareInfoCache drops the cached hardware pricing: the next
// HardwareInfo reads the store (or the defaults) again.
func ClearHardwareInfoCache() { C.st_hardware_info_clear_cache() }
