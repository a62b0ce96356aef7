// The module path is a placeholder with a host-like first element, as `go get`
// requires: replace example.com/st-secrets with the published repository's
// path (docs/install-and-release.md, "Install"). Until then, use it with a
// replace directive pointing at this directory.
module example.com/st-secrets/stsecrets

go 1.22
