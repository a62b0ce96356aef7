//go:build !st_static

package stsecrets

// Links libst_secrets.so from the repository's release build, with an rpath so
// that `go test` runs from a clean checkout after `cargo build --release`.

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lst_secrets -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
