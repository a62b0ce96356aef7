module example.com/consumer

go 1.22

require example.com/st-secrets/stsecrets v0.0.0

// The test points this at the binding's directory (go mod edit -replace);
// a real project would require the published module instead.
replace example.com/st-secrets/stsecrets => ../stsecrets
