module example.com/consumer

go 1.22

require st-secrets/stsecrets v0.1.0

// As a real project does: the replace points at the unpacked Go module
// (st-secrets-go-VERSION.tar.gz); the test rewrites it with go mod edit.
replace st-secrets/stsecrets => ../stsecrets
