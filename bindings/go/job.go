package stsecrets

/*
#include "st_secrets.h"
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"errors"
)

// WriteFiles writes the secrets a job asks for into dir (existing, on tmpfs
// or ramfs) for processes that will run as uid:gid (-1, -1: the caller's),
// and returns the variables those processes get, in order, as "NAME=VALUE"
// (paths, the directory, st://KEY references; never a value), ready for
// exec.Cmd.Env. names is "NAME[=KEY],..."; layout is "files" (the
// `st-secrets run --as-files` conventions: HF_TOKEN_PATH, NETRC,
// AWS_SHARED_CREDENTIALS_FILE, NAME_FILE) or "refs" (one file per key,
// SIMPLETUNER_SECRETS_DIRS and NAME=st://KEY). Each file is new, 0600, the
// user's; nothing is written unless every key is found (ErrNotFound names
// the variable and the key).
func (m *Manager) WriteFiles(names, dir, layout string, uid, gid int64) ([]string, error) {
	n, freeN, err := cstring("names", names)
	if err != nil {
		return nil, err
	}
	defer freeN()
	d, freeD, err := cstring("dir", dir)
	if err != nil {
		return nil, err
	}
	defer freeD()
	l, freeL, err := cstring("layout", layout)
	if err != nil {
		return nil, err
	}
	defer freeL()
	var raw json.RawMessage
	err = m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_write_files(h, n, d, l, C.int64_t(uid), C.int64_t(gid), out, e)
	}, &raw)
	if err != nil {
		return nil, err
	}
	// An object in the library's order: read as tokens, not into a map.
	dec := json.NewDecoder(bytes.NewReader(raw))
	var vars []string
	if _, terr := dec.Token(); terr != nil {
		return nil, &Error{Code: ErrInternal.Code, Name: ErrInternal.Name, Message: terr.Error()}
	}
	for dec.More() {
		var value string
		key, kerr := dec.Token() // an object's key is a token, not a value
		name, isString := key.(string)
		if kerr == nil && !isString {
			kerr = errors.New("a variable's name is not a string")
		}
		if kerr == nil {
			kerr = dec.Decode(&value)
		}
		if kerr != nil {
			return nil, &Error{Code: ErrInternal.Code, Name: ErrInternal.Name, Message: kerr.Error()}
		}
		vars = append(vars, name+"="+value)
	}
	return vars, nil
}

// Refreshed is what RefreshFiles did: the files rewritten (names in the
// directory), and how many seconds to wait before calling again (nil: no
// file holds a short-lived credential, no call is needed again).
type Refreshed struct {
	Rewritten []string `json:"rewritten"`
	NextIn    *int64   `json:"next_in"`
}

// RefreshFiles rewrites, in dir where WriteFiles wrote them for the same
// names and layout, the files of short-lived credentials (a token
// exchange's, renewed by the library ahead of its end) whose contents
// changed: each replaced atomically, with the owner, group and ACL of the
// file it replaces. The files of other secrets are left as they are and
// their keys not read again.
func (m *Manager) RefreshFiles(names, dir, layout string) (Refreshed, error) {
	var r Refreshed
	n, freeN, err := cstring("names", names)
	if err != nil {
		return r, err
	}
	defer freeN()
	d, freeD, err := cstring("dir", dir)
	if err != nil {
		return r, err
	}
	defer freeD()
	l, freeL, err := cstring("layout", layout)
	if err != nil {
		return r, err
	}
	defer freeL()
	err = m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_refresh_files(h, n, d, l, out, e)
	}, &r)
	return r, err
}

// Revoked is what RevokeLedger did: the leases and login tokens revoked
// (or found already gone), and what could not be, with why (never a value,
// a token or a lease ID). Entity is what became of the OpenBao entity of
// the job's own token when SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY=1 asked for
// it ("disabled", "disabled already"); empty otherwise.
type Revoked struct {
	Leases int      `json:"leases"`
	Tokens int      `json:"tokens"`
	Failed []string `json:"failed"`
	Entity string   `json:"entity"`
}

// RevokeLedger revokes what a job's ledger lists (the private file
// `st-secrets run` names by SIMPLETUNER_JOB_LEDGER) with this manager's
// Vault settings. A ledger readable or writable by others is refused
// (ErrPermission); a missing or empty one revokes nothing. The ledger is
// left in place.
func (m *Manager) RevokeLedger(path string) (Revoked, error) {
	var r Revoked
	p, free, err := cstring("ledger_path", path)
	if err != nil {
		return r, err
	}
	defer free()
	err = m.jsonCall(func(h *C.st_secrets, out **C.st_buf, e **C.st_error) C.st_result {
		return C.st_secrets_revoke_ledger(h, p, out, e)
	}, &r)
	return r, err
}
