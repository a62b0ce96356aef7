package stsecrets

/*
#include "st_secrets.h"
*/
import "C"

import (
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// RedactHeld asks Redact and NewRedactWriter to conceal also every value the
// manager's providers hold now (each key of the secrets file and of the
// remote secrets, and the well-known keys in the environment), not only the
// values served so far.
const RedactHeld = uint32(C.ST_REDACT_HELD)

func bytesArg(p []byte) *C.uint8_t {
	if len(p) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&p[0]))
}

// Redact returns a copy of data with every secret value this process has
// served (through any manager, in any language) concealed as
// "<concealed by st-secrets>", raw and encoded (base64 and URL-safe base64
// at any alignment, percent-encoded, inside a JSON string, hexadecimal).
// flags: 0 or RedactHeld. Values shorter than 8 bytes are not matched.
func (m *Manager) Redact(data []byte, flags uint32) ([]byte, error) {
	h, herr := m.handle()
	if herr != nil {
		return nil, herr
	}
	var out *C.st_buf
	var err *C.st_error
	rc := C.st_redact(h, C.uint32_t(flags), bytesArg(data), C.size_t(len(data)), &out, &err)
	runtime.KeepAlive(data)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return nil, failure(rc, err)
	}
	return takeBuf(out), nil
}

// Redact is Default().Redact(data, 0): the values served so far.
func Redact(data []byte) ([]byte, error) { return defaultManager.Redact(data, 0) }

// RedactWriter passes what is written to it on to another writer with every
// secret value concealed, also a value split across writes: only a tail
// that could start a value is held back, until the next Write or Close.
// Safe for concurrent use.
type RedactWriter struct {
	mu sync.Mutex
	w  io.Writer
	r  *C.st_redactor
}

// NewRedactWriter starts a redacted stream into w with the values of
// Redact(_, flags); values served later are concealed from the next write.
func (m *Manager) NewRedactWriter(w io.Writer, flags uint32) (*RedactWriter, error) {
	h, herr := m.handle()
	if herr != nil {
		return nil, herr
	}
	var r *C.st_redactor
	var err *C.st_error
	rc := C.st_redactor_new(h, C.uint32_t(flags), &r, &err)
	runtime.KeepAlive(m)
	if rc != C.ST_OK {
		return nil, failure(rc, err)
	}
	rw := &RedactWriter{w: w, r: r}
	runtime.SetFinalizer(rw, func(rw *RedactWriter) { rw.free() })
	return rw, nil
}

// NewRedactWriter is Default().NewRedactWriter(w, 0).
func NewRedactWriter(w io.Writer) (*RedactWriter, error) { return defaultManager.NewRedactWriter(w, 0) }

// Write takes p; it reports len(p) written unless the underlying writer
// failed.
func (rw *RedactWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.r == nil {
		return 0, &Error{Code: ErrInvalidArgument.Code, Name: ErrInvalidArgument.Name, Message: "redact writer is closed"}
	}
	var out *C.st_buf
	var err *C.st_error
	rc := C.st_redactor_write(rw.r, bytesArg(p), C.size_t(len(p)), &out, &err)
	runtime.KeepAlive(p)
	if rc != C.ST_OK {
		return 0, failure(rc, err)
	}
	if _, werr := rw.w.Write(takeBuf(out)); werr != nil {
		return 0, werr
	}
	return len(p), nil
}

// Close writes what was held back and frees the stream; it does not close
// the underlying writer. Idempotent.
func (rw *RedactWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.r == nil {
		return nil
	}
	var out *C.st_buf
	var err *C.st_error
	rc := C.st_redactor_finish(rw.r, &out, &err)
	var result error
	if rc != C.ST_OK {
		result = failure(rc, err)
	} else if _, werr := rw.w.Write(takeBuf(out)); werr != nil {
		result = werr
	}
	C.st_redactor_free(rw.r)
	rw.r = nil
	return result
}

func (rw *RedactWriter) free() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.r != nil {
		C.st_redactor_free(rw.r)
		rw.r = nil
	}
}
