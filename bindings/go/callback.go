package stsecrets

/*
#include <stdlib.h>
#include "st_secrets.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// computeState carries a GetOrSet closure and its outcome across the C call.
type computeState struct {
	fn  func() ([]byte, error)
	err error
}

// goStCompute is the st_compute_fn of GetOrSet (called through the C shim in
// cache.go). A panic in the closure is recovered here: it must not unwind
// through the library's C frames.
//
//export goStCompute
func goStCompute(userData unsafe.Pointer, key *C.char, sink *C.st_sink) (rc C.st_result) {
	state := cgo.Handle(uintptr(userData)).Value().(*computeState)
	defer func() {
		if p := recover(); p != nil {
			state.err = fmt.Errorf("stsecrets: GetOrSet compute panicked: %v", p)
			rc = C.ST_CALLBACK
		}
	}()
	value, err := state.fn()
	if err != nil {
		state.err = err
		return C.ST_CALLBACK
	}
	var data *C.uint8_t
	if len(value) > 0 {
		data = (*C.uint8_t)(unsafe.Pointer(&value[0]))
	}
	return C.st_sink_write(sink, data, C.size_t(len(value)))
}

// goStChange is the st_change_fn of OnChange (through the C shim in
// events.go), called on the thread that noticed the change. A panic in the
// listener is recovered here: it must not unwind through the library.
//
//export goStChange
func goStChange(userData unsafe.Pointer, key *C.char, info *C.char) {
	fn := (*(*cgo.Handle)(userData)).Value().(func(Change))
	change, err := parseChange(C.GoString(key), C.GoString(info))
	if err != nil {
		return
	}
	defer func() { _ = recover() }()
	fn(change)
}

// goStRelease is the st_release_fn of OnChange: the listener is gone for
// good, so its handle goes too.
//
//export goStRelease
func goStRelease(userData unsafe.Pointer) {
	(*(*cgo.Handle)(userData)).Delete()
	C.free(userData)
}
