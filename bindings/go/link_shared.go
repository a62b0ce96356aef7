//go:build !st_static

package stsecrets

// Links the shared library found by pkg-config: an installed prefix
// (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig; st_secrets.pc adds an rpath, so
// the program runs without LD_LIBRARY_PATH) or, inside the repository, the
// release build (PKG_CONFIG_PATH=<repo>/target/release/pkgconfig, written by
// the build).

/*
#cgo pkg-config: st_secrets
*/
import "C"
