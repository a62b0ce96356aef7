//go:build st_static

package stsecrets

// `go build -tags st_static` links libst_secrets.a; the system libraries
// after it are those the Rust standard library needs (rustc
// --print native-static-libs).

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libst_secrets.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
