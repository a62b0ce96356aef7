package stsecrets

/*
#include "st_secrets.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"strings"
	"sync"
)

// Manager is a secrets chain (environment > secrets file > AWS Secrets
// Manager > Vault by default; configuration keys: docs/configuration.md). Safe
// for concurrent use; Close it when done (a finalizer is the backstop). Do
// not Close while other goroutines still use it.
type Manager struct {
	mu   sync.Mutex
	h    *C.st_secrets // nil: the library's process-wide default manager
	dflt bool
}

// Provider is one link of the chain, as the library reports it.
type Provider struct {
	Name      string   `json:"name"`
	Available bool     `json:"available"`
	Detail    string   `json:"detail"`
	Warnings  []string `json:"warnings"`
	LastError *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_error"`
}

// New makes a manager. cfg holds the library's configuration keys (the
// docs/configuration.md, section "Configuration keys"); nil means "from the
// environment".
func New(cfg map[string]any) (*Manager, error) {
	var text *C.char
	if cfg != nil {
		raw, err := json.Marshal(cfg)
		if err != nil {
			return nil, &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: err.Error()}
		}
		var free func()
		var cerr error
		text, free, cerr = cstring("config", string(raw))
		if cerr != nil {
			return nil, cerr
		}
		defer free()
	}
	var h *C.st_secrets
	var err *C.st_error
	if rc := C.st_secrets_new(text, &h, &err); rc != C.ST_OK {
		return nil, failure(rc, err)
	}
	m := &Manager{h: h}
	runtime.SetFinalizer(m, (*Manager).Close)
	return m, nil
}

var defaultManager = &Manager{dflt: true}

// Default is the process-wide manager, configured from the environment.
func Default() *Manager { return defaultManager }

func (m *Manager) handle() (*C.st_secrets, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil && !m.dflt {
		return nil, &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: "manager is closed"}
	}
	return m.h, nil
}

// Close frees the manager. Idempotent; the default manager is never freed.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.st_secrets_free(m.h)
		m.h = nil
	}
	return nil
}

// Get returns the value from the first provider that has key; ErrNotFound
// when every provider answered "absent", else the first provider failure.
func (m *Manager) Get(key string) (string, error) {
	h, herr := m.handle()
	if herr != nil {
		return "", herr
	}
	k, free, cerr := cstring("key", key)
	if cerr != nil {
		return "", cerr
	}
	defer free()
	var out *C.st_buf
	var err *C.st_error
	rc := C.st_secrets_get(h, k, &out, &err)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return "", failure(rc, err)
	}
	return string(takeBuf(out)), nil
}

// Set saves key to the secrets file (0600, atomic, locked).
func (m *Manager) Set(key, value string) error {
	h, herr := m.handle()
	if herr != nil {
		return herr
	}
	k, freeK, cerr := cstring("key", key)
	if cerr != nil {
		return cerr
	}
	defer freeK()
	v, freeV, cerr := cstring("value", value)
	if cerr != nil {
		return cerr
	}
	defer freeV()
	var err *C.st_error
	rc := C.st_secrets_set(h, k, v, &err)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// Delete removes key from the secrets file; ErrNotFound when it was not there.
func (m *Manager) Delete(key string) error {
	h, herr := m.handle()
	if herr != nil {
		return herr
	}
	k, free, cerr := cstring("key", key)
	if cerr != nil {
		return cerr
	}
	defer free()
	var err *C.st_error
	rc := C.st_secrets_delete(h, k, &err)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}

// ClearCache drops what the manager caches.
func (m *Manager) ClearCache() {
	if h, err := m.handle(); err == nil {
		C.st_secrets_clear_cache(h)
	}
	runtime.KeepAlive(m)
}

// Providers returns the chain in priority order.
func (m *Manager) Providers() ([]Provider, error) {
	var list []Provider
	err := m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_providers_json(h, out, e)
	}, &list)
	return list, err
}

// Metrics returns the remote providers' counters (the process's): per
// provider, "requests" by operation, method and outcome with their network
// time and histogram buckets, "retries", "failovers", "stale_served",
// "refreshes_ahead", "logins", "renewals", "leases_issued",
// "leases_renewed", "leases_revoked", "tokens_revoked". Never a key or value.
func (m *Manager) Metrics() (map[string]any, error) {
	var doc map[string]any
	err := m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_metrics_json(h, out, e)
	}, &doc)
	return doc, err
}

// Provenance returns which version of each secret this manager used, one
// entry per key: "key", "provider", "version", "stages", "fingerprint"
// (hmac-sha256:<hex> of the value under the job's salt), "first_used",
// "last_used"; never a value. ErrInvalidArgument when the manager does not
// record it (the config key "provenance", SIMPLETUNER_PROVENANCE_FILE).
func (m *Manager) Provenance() ([]map[string]any, error) {
	var list []map[string]any
	err := m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_provenance_json(h, out, e)
	}, &list)
	return list, err
}

// jsonCall runs a call that writes JSON to an st_buf and decodes it into v.
func (m *Manager) jsonCall(call func(*C.st_secrets, **C.st_buf, **C.st_error) C.st_result, v any) error {
	h, herr := m.handle()
	if herr != nil {
		return herr
	}
	var out *C.st_buf
	var err *C.st_error
	rc := call(h, &out, &err)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return failure(rc, err)
	}
	if jerr := json.Unmarshal(takeBuf(out), v); jerr != nil {
		return &Error{Code: ErrInternal.Code, Name: ErrInternal.Name, Message: jerr.Error()}
	}
	return nil
}

// String shows the chain, never a value.
func (m *Manager) String() string {
	list, err := m.Providers()
	if err != nil {
		return "Manager(<closed>)"
	}
	names := make([]string, len(list))
	for i, p := range list {
		names[i] = p.Name
	}
	return "Manager(" + strings.Join(names, " > ") + ")"
}

// GetWithSource is Get that also names the provider that answered ("env",
// "mounted", "file", "aws", "gcp", "azure", "vault"), for a launcher's log. Never logs the value.
func (m *Manager) GetWithSource(key string) (value, provider string, err error) {
	h, herr := m.handle()
	if herr != nil {
		return "", "", herr
	}
	k, free, kerr := cstring("key", key)
	if kerr != nil {
		return "", "", kerr
	}
	defer free()
	var out, source *C.st_buf
	var cerr *C.st_error
	rc := C.st_secrets_get_with_source(h, k, &out, &source, &cerr)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return "", "", failure(rc, cerr)
	}
	return string(takeBuf(out)), string(takeBuf(source)), nil
}

// VersionInfo says where a value came from and which version of the remote
// secret it is: Version is the AWS VersionId or the Vault KV v2 version, empty
// for the environment, the secrets file and KV v1; Stages are AWS's. Record
// it, never the value.
type VersionInfo struct {
	Provider string   `json:"provider"`
	Version  string   `json:"version"`
	Stages   []string `json:"stages"`
	// InsteadOf is the version in force that was reported failed when this
	// version stands in for it (ReportFailure); "" otherwise.
	InsteadOf string `json:"instead_of"`
}

// parseVersionInfo reads the library's version JSON (a null version is "").
func parseVersionInfo(buf []byte) (VersionInfo, bool, error) {
	var raw struct {
		Provider string   `json:"provider"`
		Version  *string  `json:"version"`
		Stages   []string `json:"stages"`
		Instead  string   `json:"instead_of"`
		Changed  bool     `json:"changed"`
	}
	if err := json.Unmarshal(buf, &raw); err != nil {
		return VersionInfo{}, false, err
	}
	info := VersionInfo{Provider: raw.Provider, Stages: raw.Stages, InsteadOf: raw.Instead}
	if raw.Version != nil {
		info.Version = *raw.Version
	}
	return info, raw.Changed, nil
}

// GetWithVersion is GetWithSource that also gives the version of the remote
// secret the value comes from.
func (m *Manager) GetWithVersion(key string) (string, VersionInfo, error) {
	var info VersionInfo
	h, herr := m.handle()
	if herr != nil {
		return "", info, herr
	}
	k, free, kerr := cstring("key", key)
	if kerr != nil {
		return "", info, kerr
	}
	defer free()
	var out, infoBuf *C.st_buf
	var cerr *C.st_error
	rc := C.st_secrets_get_with_version(h, k, &out, &infoBuf, &cerr)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return "", info, failure(rc, cerr)
	}
	value := string(takeBuf(out))
	info, _, err := parseVersionInfo(takeBuf(infoBuf))
	if err != nil {
		return "", info, err
	}
	return value, info, nil
}

// ReportFailure says "this value failed me": a login with key's value of
// version (as GetWithVersion gave it; "" for the version held) was refused.
// The key is read again as Refresh reads it, except that a remote secret
// whose version in force is the one that failed is answered with the version
// beside it (AWS AWSPENDING, then AWSPREVIOUS; the Vault KV v2 version
// before), held until the service's version in force is another; a leased
// credential is issued anew. Info says
// which version is now held (InsteadOf names the one it stands in for);
// changed whether the value differs from what this process served before.
func (m *Manager) ReportFailure(key, version string) (value string, info VersionInfo, changed bool, err error) {
	h, herr := m.handle()
	if herr != nil {
		return "", info, false, herr
	}
	k, free, kerr := cstring("key", key)
	if kerr != nil {
		return "", info, false, kerr
	}
	defer free()
	var v *C.char
	if version != "" {
		cv, freeV, verr := cstring("version", version)
		if verr != nil {
			return "", info, false, verr
		}
		defer freeV()
		v = cv
	}
	var out, infoBuf *C.st_buf
	var cerr *C.st_error
	rc := C.st_secrets_report_failure(h, k, v, &out, &infoBuf, &cerr)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return "", info, false, failure(rc, cerr)
	}
	value = string(takeBuf(out))
	info, changed, err = parseVersionInfo(takeBuf(infoBuf))
	if err != nil {
		return "", info, false, err
	}
	return value, info, changed, nil
}

// Refresh reads key again now, whatever the caches say ("this value failed
// me"): a remote secret is fetched at most once per refresh_min_interval,
// single-flight, so a storm of callers sends one request. Changed says whether
// the value differs from what this process would have served before.
func (m *Manager) Refresh(key string) (value string, changed bool, err error) {
	h, herr := m.handle()
	if herr != nil {
		return "", false, herr
	}
	k, free, kerr := cstring("key", key)
	if kerr != nil {
		return "", false, kerr
	}
	defer free()
	var out *C.st_buf
	var ch C.bool
	var cerr *C.st_error
	rc := C.st_secrets_refresh(h, k, &out, &ch, &cerr)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return "", false, failure(rc, cerr)
	}
	return string(takeBuf(out)), bool(ch), nil
}

// Diagnose runs the doctor's live checks: every provider's state (as
// Providers) with, under "checks", what the remote providers found (credential
// source, caller identity, whether the secret is readable). Sends requests;
// never returns a value.
func (m *Manager) Diagnose() ([]map[string]any, error) {
	var list []map[string]any
	err := m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_diagnose_json(h, out, e)
	}, &list)
	return list, err
}

// ResetDefault drops the process-wide manager; its next use builds it again
// from the environment (after a launcher changed AWS_* or VAULT_* variables,
// say). Managers made with New are not affected.
func ResetDefault() error {
	var err *C.st_error
	if rc := C.st_secrets_reset_default(&err); rc != C.ST_OK {
		return failure(rc, err)
	}
	return nil
}
