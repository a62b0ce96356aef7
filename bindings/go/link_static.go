//go:build st_static

package stsecrets

// `go build -tags st_static` links libst_secrets.a through pkg-config's
// st_secrets_static module, which lists the system libraries the Rust
// standard library needs (rustc --print native-static-libs). The program
// then needs no libst_secrets.so at run time.

/*
#cgo pkg-config: st_secrets_static
*/
import "C"
