package stsecrets

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVersionAndGeneratedErrors(t *testing.T) {
	if !strings.HasPrefix(Version, "st-secrets/0.") {
		t.Fatalf("version %q", Version)
	}
	if out, err := exec.Command("go", "run", "./internal/gen", "-check").CombinedOutput(); err != nil {
		t.Fatalf("errors_gen.go is stale: %v %s", err, out)
	}
	if len(sentinels) < 18 {
		t.Fatalf("only %d sentinels", len(sentinels))
	}
	for _, s := range sentinels {
		if got := resultName(s.Code); got != s.Name {
			t.Errorf("code %d: library says %s, sentinel says %s", s.Code, got, s.Name)
		}
	}
	wrapped := &Error{Code: 303, Name: "ST_AUTH", Message: "denied"}
	if !errors.Is(wrapped, ErrAuth) || errors.Is(wrapped, ErrNotFound) {
		t.Fatal("errors.Is must compare codes")
	}
}

func TestCache(t *testing.T) {
	c, err := NewCache(DefaultTTL, 2, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get("missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if err := c.Set("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1000) // larger than Get's first buffer
	for i := range big {
		big[i] = byte(i)
	}
	if err := c.Set("big", big); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get("big"); err != nil || string(v) != string(big) {
		t.Fatalf("big value: %d bytes, %v", len(v), err)
	}
	c.Delete("big")
	if err := c.Set("empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get("empty"); err != nil || len(v) != 0 {
		t.Fatalf("empty value: %q %v", v, err)
	}
	if err := c.SetTTL("short", []byte("x"), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond)
	if _, err := c.Get("short"); !errors.Is(err, ErrNotFound) {
		t.Fatal("an expired entry was returned")
	}
	s, err := c.Stats()
	if err != nil || s.MaxSize != 2 || s.DefaultTTL != 300*time.Second || s.Evictions == 0 {
		t.Fatalf("stats %+v %v", s, err)
	}
	if !c.Delete("empty") || c.Delete("empty") {
		t.Fatal("delete")
	}
	_ = c.Set("p:1", []byte("1"))
	if n := c.InvalidatePrefix("p:"); n != 1 {
		t.Fatalf("invalidated %d", n)
	}
	c.Clear()
	c.Close()
	c.Close() // idempotent
	if _, err := c.Get("a"); !errors.Is(err, ErrNullArgument) {
		t.Fatalf("use after Close must be an error, got %v", err)
	}
}

func TestGetOrSetSingleFlightErrorsAndPanics(t *testing.T) {
	c, err := NewCache(time.Hour, 100, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var calls atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, err := c.GetOrSet("k", func() ([]byte, error) {
				calls.Add(1)
				time.Sleep(100 * time.Millisecond)
				return []byte("computed"), nil
			})
			if err != nil || string(v) != "computed" {
				t.Errorf("got %q %v", v, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("compute ran %d times", calls.Load())
	}
	boom := errors.New("upstream failed")
	if _, err := c.GetOrSet("bad", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("want the compute's error, got %v", err)
	}
	if _, err := c.Get("bad"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a failing compute cached something")
	}
	_, err = c.GetOrSet("panics", func() ([]byte, error) { panic("compute exploded") })
	if err == nil || !strings.Contains(err.Error(), "compute exploded") {
		t.Fatalf("want the recovered panic as an error, got %v", err)
	}
}

func TestProcessWideCaches(t *testing.T) {
	p := ProviderConfigCache()
	s, _ := p.Stats()
	if s.MaxSize != 100 || s.DefaultTTL != 300*time.Second {
		t.Fatalf("%+v", s)
	}
	_ = p.Set("provider:gotest:config", []byte("{}"))
	if n := InvalidateProviderCache("gotest"); n != 1 {
		t.Fatalf("invalidated %d", n)
	}
	_ = UserPermissionCache().Set("user:77:perms", []byte("x"))
	if n := InvalidateUserCache(77); n != 1 {
		t.Fatalf("invalidated %d", n)
	}
	p.Close() // a no-op for process-wide caches
	if err := p.Set("provider:x:y", []byte("1")); err != nil {
		t.Fatal(err)
	}
}

func TestManager(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets.json")
	m, err := New(map[string]any{"file_path": file, "env_prefix": "GOTEST"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Get("HF_TOKEN"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if err := m.Set("HF_TOKEN", "hf_go_secret"); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Get("hf-token"); err != nil || v != "hf_go_secret" {
		t.Fatalf("%q %v", v, err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	t.Setenv("GOTEST_HF_TOKEN", "from-env")
	if v, _ := m.Get("HF_TOKEN"); v != "from-env" {
		t.Fatalf("the environment must win, got %q", v)
	}
	providers, err := m.Providers()
	if err != nil || len(providers) != 7 || providers[0].Name != "env" || providers[1].Name != "mounted" || providers[2].Name != "file" || providers[3].Name != "aws" || providers[4].Name != "gcp" || providers[5].Name != "azure" || providers[6].Name != "vault" {
		t.Fatalf("%+v %v", providers, err)
	}
	if strings.Contains(m.String(), "hf_go") || !strings.Contains(m.String(), "env > mounted > file > aws > gcp > azure > vault") {
		t.Fatalf("String() = %q", m.String())
	}
	if err := m.Delete("HF_TOKEN"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete("HF_TOKEN"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if _, err := New(map[string]any{"fille_path": "x"}); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "'fille_path'") {
		t.Fatalf("want ErrInvalidArgument naming the key, got %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"K": "hf_LEAK", oops}`), 0o600)
	mb, _ := New(map[string]any{"file_path": bad, "env_prefix": "GOTEST_NONE"})
	defer mb.Close()
	if _, err := mb.Get("K"); !errors.Is(err, ErrParse) || strings.Contains(err.Error(), "LEAK") {
		t.Fatalf("want ErrParse without the content, got %v", err)
	}
	if Default() != Default() {
		t.Fatal("Default must be one manager")
	}
	m.Close()
	if _, err := m.Get("x"); err == nil {
		t.Fatal("use after Close must be an error")
	}
}

func TestCrypto(t *testing.T) {
	t.Setenv("SIMPLETUNER_CREDENTIAL_KEY", "go-binding-test-key")
	ResetCrypto()
	defer ResetCrypto()
	ct, err := Encrypt("r8_go")
	if err != nil || !strings.HasPrefix(ct, "Z0FBQUFB") {
		t.Fatalf("%q %v", ct, err)
	}
	if pt, err := Decrypt(ct); err != nil || pt != "r8_go" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := DecryptWithSecret("wrong", ct); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("want ErrInvalidToken, got %v", err)
	}
	ct2, _ := EncryptWithSecret("go-binding-test-key", "x")
	if pt, _ := Decrypt(ct2); pt != "x" {
		t.Fatal("explicit and sourced secrets must agree")
	}
	if same, _ := Reencrypt(ct); same != ct {
		t.Fatal("a current ciphertext comes back unchanged")
	}
}

func TestStore(t *testing.T) {
	t.Setenv("SIMPLETUNER_CREDENTIAL_KEY", "go-binding-test-key")
	ResetCrypto()
	defer ResetCrypto()
	s, err := OpenStore(filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SaveProviderConfig("replicate", map[string]any{"a": 1.0, "b": "x"}); err != nil {
		t.Fatal(err)
	}
	merged, err := s.MergeProviderConfig("replicate", map[string]any{"a": nil, "c": true})
	if err != nil || len(merged) != 2 || merged["c"] != true {
		t.Fatalf("%v %v", merged, err)
	}
	if got, _ := s.ProviderConfig("replicate"); got["b"] != "x" {
		t.Fatalf("%v", got)
	}
	if err := s.SetCredential("replicate", "api_token", "r8_tok"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Credential("replicate", "api_token"); err != nil || v != "r8_tok" {
		t.Fatalf("%q %v", v, err)
	}
	if err := s.DeleteCredential("replicate", "api_token"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Credential("replicate", "api_token"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if n, err := s.VerifyAudit(); err != nil || n != 5 {
		t.Fatalf("%d %v", n, err)
	}
	info, err := HardwareInfo(nil)
	if err != nil || info["gpu-l40s"] == nil {
		t.Fatalf("%v %v", info, err)
	}
	if cost, err := HourlyCost(nil, ""); err != nil || cost < 3.509 || cost > 3.511 {
		t.Fatalf("%v %v", cost, err)
	}
}

func TestManagerSourceDiagnoseAndResetDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	m, err := New(map[string]any{"file_path": file, "env_prefix": "GOTEST_SRC", "providers": []string{"env", "file"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Set("HF_TOKEN", "hf_go_source"); err != nil {
		t.Fatal(err)
	}
	if v, p, err := m.GetWithSource("HF_TOKEN"); err != nil || v != "hf_go_source" || p != "file" {
		t.Fatalf("%q %q %v", v, p, err)
	}
	if v, info, err := m.GetWithVersion("HF_TOKEN"); err != nil || v != "hf_go_source" || info.Provider != "file" || info.Version != "" || len(info.Stages) != 0 {
		t.Fatalf("%q %+v %v", v, info, err)
	}
	if v, changed, err := m.Refresh("HF_TOKEN"); err != nil || v != "hf_go_source" || changed {
		t.Fatalf("refresh: %q %v %v", v, changed, err)
	}
	if err := os.WriteFile(file, []byte(`{"HF_TOKEN": "hf_go_rotated"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, changed, err := m.Refresh("HF_TOKEN"); err != nil || v != "hf_go_rotated" || !changed {
		t.Fatalf("refresh after a rotation: %q %v %v", v, changed, err)
	}
	if _, _, err := m.Refresh("MISSING_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	// A failure reported: the file has no versions, so it is read again as a
	// refresh (stand-ins: the Rust suites against moto and OpenBao).
	if v, info, changed, err := m.ReportFailure("HF_TOKEN", ""); err != nil || v != "hf_go_rotated" || changed || info.Provider != "file" || info.InsteadOf != "" {
		t.Fatalf("report: %q %+v %v %v", v, info, changed, err)
	}
	if _, _, _, err := m.ReportFailure("MISSING_KEY", "3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if _, _, _, err := m.ReportFailure("HF_TOKEN", "v\x00"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument for a NUL byte, got %v", err)
	}
	if err := m.Set("HF_TOKEN", "hf_go_source"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOTEST_SRC_HF_TOKEN", "from-env")
	if _, p, _ := m.GetWithSource("HF_TOKEN"); p != "env" {
		t.Fatalf("provider %q, want env", p)
	}
	if _, _, err := m.GetWithSource("MISSING_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	report, err := m.Diagnose()
	if err != nil || len(report) != 2 || report[1]["name"] != "file" {
		t.Fatalf("%v %v", report, err)
	}
	if _, ok := report[0]["checks"]; !ok {
		t.Fatalf("the doctor's report has a checks field: %v", report[0])
	}
	// The default manager reads the environment again after a reset.
	t.Setenv("SIMPLETUNER_SECRETS_FILE", file)
	if err := ResetDefault(); err != nil {
		t.Fatal(err)
	}
	if v, err := Default().Get("HF_TOKEN"); err != nil || v != "hf_go_source" {
		t.Fatalf("%q %v", v, err)
	}
	os.Unsetenv("SIMPLETUNER_SECRETS_FILE")
	if err := ResetDefault(); err != nil {
		t.Fatal(err)
	}
}

func TestCacheCleanupAndStoreAdministration(t *testing.T) {
	c, err := NewCache(50*time.Millisecond, 10, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Set("a", []byte("1"))
	_ = c.Set("b", []byte("2"))
	time.Sleep(120 * time.Millisecond)
	if n := c.Cleanup(); n != 2 {
		t.Fatalf("cleanup removed %d, want 2", n)
	}

	t.Setenv("SIMPLETUNER_CREDENTIAL_KEY", "go-binding-rotate-new")
	t.Setenv("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", "go-binding-rotate-old")
	ResetCrypto()
	defer ResetCrypto()
	s, err := OpenStore(filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetCredential("replicate", "api_token", "r8_rotate"); err != nil {
		t.Fatal(err)
	}
	counts, err := s.RotateCredentials()
	if err != nil || counts == nil {
		t.Fatalf("%v %v", counts, err)
	}
	entries, err := s.AuditEntries(10)
	if err != nil || len(entries) < 1 {
		t.Fatalf("%v %v", entries, err)
	}
	for _, e := range entries {
		for _, v := range e {
			if s, ok := v.(string); ok && strings.Contains(s, "r8_rotate") {
				t.Fatal("an audit entry shows the credential")
			}
		}
	}
	if _, err := s.AuditEntries(-1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}

	defer ClearHardwareInfoCache()
	if err := SetHardwareInfo(map[string]any{"gpu-test": map[string]any{"name": "Test", "cost_per_second": 0.001}}); err != nil {
		t.Fatal(err)
	}
	if cost, err := HourlyCost(nil, "gpu-test"); err != nil || cost < 3.599 || cost > 3.601 {
		t.Fatalf("%v %v", cost, err)
	}
	if err := SetHardwareInfo(map[string]any{"gpu-test": map[string]any{"cost_per_second": -1}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}
	ClearHardwareInfoCache()
	if _, err := HourlyCost(nil, "gpu-test"); err == nil {
		t.Fatal("after ClearHardwareInfoCache the defaults answer: gpu-test is unknown")
	}
}

// A string with a NUL byte was cut at the NUL by C ("user\x00admin" saved
// as "user"): refused, naming the argument, and nothing reaches the library.
func TestNulBytesAreRefusedByArgument(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	m, err := New(map[string]any{"file_path": file, "providers": []string{"file"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	check := func(what string, err error, arg string) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(e.Message, "'"+arg+"'") {
			t.Fatalf("%s: want ErrInvalidArgument naming %q, got %v", what, arg, err)
		}
	}
	check("Set key", m.Set("user\x00admin", "v"), "key")
	check("Set value", m.Set("user", "a\x00b"), "value")
	_, err = m.Get("user\x00admin")
	check("Get", err, "key")
	check("Delete", m.Delete("user\x00admin"), "key")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("nothing may be saved: %v", err)
	}
	_, err = Encrypt("a\x00b")
	check("Encrypt", err, "plaintext")
	c, err := NewCache(time.Minute, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check("Cache.Set", c.Set("k\x00x", []byte("v")), "key")
	if c.Set("k", []byte("v")) != nil || c.Delete("k\x00x") {
		t.Fatal("a key cut at its NUL must not delete the prefix key")
	}
	if v, err := c.Get("k"); err != nil || string(v) != "v" {
		t.Fatalf("%q %v", v, err)
	}
}

func TestOnChangeTellsSavesAndRewritesUntilRemoved(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	m, err := New(map[string]any{"file_path": file, "providers": []string{"file"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Set("HF_TOKEN", "one"); err != nil {
		t.Fatal(err)
	}
	changes := make(chan Change, 16)
	id, err := m.OnChange(func(c Change) { changes <- c })
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set("HF_TOKEN", "two"); err != nil {
		t.Fatal(err)
	}
	if c := <-changes; c.Key != "HF_TOKEN" || c.Provider != "file" || c.Version != "" || c.Removed {
		t.Fatalf("%+v", c)
	}
	// Rewritten by someone else, no Get: the library's watch tells it, on
	// its own thread.
	if err := os.WriteFile(file, []byte(`{"OTHER": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	told := map[string]bool{}
	for len(told) < 2 {
		select {
		case c := <-changes:
			told[c.Key] = c.Removed
		case <-time.After(30 * time.Second):
			t.Fatalf("told only %v", told)
		}
	}
	if !told["HF_TOKEN"] || told["OTHER"] {
		t.Fatalf("%v: HF_TOKEN removed, OTHER added", told)
	}
	if err := m.RemoveListener(id); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveListener(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if err := m.Set("HF_TOKEN", "three"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		t.Fatalf("told after removal: %+v", c)
	default:
	}
}

func TestReferencesResolveDownTheChain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	_ = os.WriteFile(file, []byte(`{"hf-token": "hf_behind_a_reference"}`), 0o600)
	m, err := New(map[string]any{"file_path": file, "env_prefix": "GOREF"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	t.Setenv("GOREF_HF_TOKEN", "st://hf-token")
	t.Setenv("GOREF_OTHER", "st://nowhere")
	if v, err := m.Get("HF_TOKEN"); err != nil || v != "hf_behind_a_reference" {
		t.Fatalf("%q %v", v, err)
	}
	if _, err := m.Get("OTHER"); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "st://nowhere") {
		t.Fatalf("want ErrInvalidArgument naming the reference, got %v", err)
	}
	off, _ := New(map[string]any{"file_path": file, "env_prefix": "GOREF", "references": false})
	defer off.Close()
	if v, _ := off.Get("HF_TOKEN"); v != "st://hf-token" {
		t.Fatalf("references off: %q", v)
	}
}

func TestProvenanceRecordsVersionsAndFingerprintsNeverValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(file, []byte(`{"HF_TOKEN": "hf_go_provenance"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(map[string]any{"file_path": file, "providers": []string{"file"}, "provenance": true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if v, err := m.Get("hf-token"); err != nil || v != "hf_go_provenance" {
		t.Fatalf("%q %v", v, err)
	}
	used, err := m.Provenance()
	if err != nil || len(used) != 1 || used[0]["key"] != "hf-token" || used[0]["provider"] != "file" {
		t.Fatalf("%v %v", used, err)
	}
	if fp, _ := used[0]["fingerprint"].(string); !strings.HasPrefix(fp, "hmac-sha256:") || strings.Contains(fp, "hf_go_provenance") {
		t.Fatalf("fingerprint %q", fp)
	}
	off, err := New(map[string]any{"file_path": file, "providers": []string{"file"}})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if _, err := off.Provenance(); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument when off, got %v", err)
	}
	// The counters: an object by provider (the remote suites count them).
	if doc, err := off.Metrics(); err != nil || doc == nil {
		t.Fatalf("metrics: %v %v", doc, err)
	}
}
