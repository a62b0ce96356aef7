// A Go program that uses st-secrets built against an installed prefix
// (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig). Reads HF_TOKEN through the chain
// from the secrets file named by os.Args[1]; prints the provider, never the
// value.
package main

import (
	"fmt"
	"os"

	"st-secrets/stsecrets"
)

func main() {
	m, err := stsecrets.New(map[string]any{"file_path": os.Args[1], "providers": []string{"env", "file"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer m.Close()
	value, provider, err := m.GetWithSource("HF_TOKEN")
	if err != nil || value == "" {
		fmt.Fprintln(os.Stderr, "get failed:", err)
		os.Exit(1)
	}
	c, err := stsecrets.NewCache(stsecrets.DefaultTTL, 8, stsecrets.DefaultTTL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	_ = c.Set("k", []byte("v"))
	if v, err := c.Get("k"); err != nil || string(v) != "v" {
		fmt.Fprintln(os.Stderr, "cache failed:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: HF_TOKEN from %s; cache ok\n", stsecrets.Version, provider)
}
