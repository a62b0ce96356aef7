// The module ships as a release artifact (st-secrets-go-VERSION.tar.gz,
// scripts/dist.sh), not from a repository host: a project requires
// st-secrets/stsecrets and points a replace directive at the unpacked folder
// (docs/install-and-release.md, "Go"). The path names no host, so without
// the replace Go stops at once ("missing dot in first path element") instead
// of asking a proxy for a module nobody publishes there.
module st-secrets/stsecrets

go 1.22
