// Package stsecrets is the Go binding of libst_secrets: the secrets chain
// (environment > secrets file > AWS Secrets Manager > Vault), the TTL cache, SimpleTuner-compatible
// credential encryption and the provider-configuration store. It wraps the C
// header and re-implements nothing.
//
// Errors are *Error values carrying the st_result code and a message that
// never contains a secret; compare them with errors.Is against the sentinels
// (ErrNotFound, ErrAuth, ...). Handles have Close methods, with finalizers as
// a backstop.
package stsecrets

//go:generate go run ./internal/gen

/*
#include <stdlib.h>
#include <string.h>
#include "st_secrets.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// BindingMajor is the library major version this binding is written for.
const BindingMajor = 0

// Version is the loaded library's version text.
var Version = C.GoString(C.st_version())

func init() {
	if C.st_version_major() != BindingMajor || C.ST_VERSION_MAJOR != BindingMajor {
		panic(fmt.Sprintf("stsecrets: binding for major version %d cannot use %s", BindingMajor, Version))
	}
}

// Error is a failure of the library: its st_result code and name, and a
// message that never contains a secret value.
type Error struct {
	Code    int
	Name    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// Is makes errors.Is(err, ErrNotFound) true for any error of that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func resultName(code int) string {
	return C.GoString(C.st_result_name(C.int(code)))
}

// failure turns a result and its st_error into an *Error (and frees it).
func failure(rc C.st_result, err *C.st_error) error {
	e := &Error{Code: int(rc), Name: resultName(int(rc))}
	if err != nil {
		e.Message = C.GoString(C.st_error_message(err))
		C.st_error_free(err)
	}
	return e
}

// takeBuf copies an st_buf's bytes and frees it (the library zeroes it).
func takeBuf(b *C.st_buf) []byte {
	defer C.st_buf_free(b)
	return C.GoBytes(unsafe.Pointer(C.st_buf_data(b)), C.int(C.st_buf_len(b)))
}

// cstring is a C copy of s, the argument called name; the returned function
// zeroes and frees it (for values that may be secrets). A string holding a
// NUL byte is refused with ErrInvalidArgument naming the argument: C would
// read it only up to the NUL ("user\x00admin" as "user").
func cstring(name, s string) (*C.char, func(), error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, func() {}, &Error{
			Code:    ErrInvalidArgument.Code,
			Name:    ErrInvalidArgument.Name,
			Message: "argument '" + name + "' holds a NUL byte, which a C string cannot carry; refused",
		}
	}
	p := C.CString(s)
	return p, func() {
		C.memset(unsafe.Pointer(p), 0, C.size_t(len(s)))
		C.free(unsafe.Pointer(p))
	}, nil
}
