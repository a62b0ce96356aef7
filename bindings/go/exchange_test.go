package stsecrets

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A token exchange through the binding: a key of the chain is the
// credential an RFC 8693 endpoint gives for the workload's token, held
// until its lifetime is mostly spent (one request for many reads), and
// replaced once when reported refused.
func TestATokenExchangeGivesAKey(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" ||
			!strings.HasPrefix(r.PostForm.Get("subject_token"), "eyJ") {
			http.Error(w, `{"error": "invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "at_go_%d", "token_type": "Bearer", "expires_in": 600}`, n.Add(1))
	}))
	defer srv.Close()
	b64 := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	claims := fmt.Sprintf(`{"iss": "https://issuer.test", "sub": "job", "aud": "gateway", "iat": %d, "exp": %d}`,
		now, now+3600)
	subject := filepath.Join(t.TempDir(), "subject.jwt")
	if err := os.WriteFile(subject, []byte(b64([]byte(`{"alg":"RS256"}`))+"."+b64([]byte(claims))+".c2ln"),
		0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(map[string]any{"providers": []string{"exchange"}, "retries": 0, "exchanges": map[string]any{
		"API_KEY": map[string]any{"profile": "rfc8693", "url": srv.URL + "/token", "audience": "gateway",
			"subject_token_file": subject}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := 0; i < 3; i++ {
		if v, err := m.Get("API_KEY"); err != nil || v != "at_go_1" {
			t.Fatalf("read %d: %q %v", i, v, err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("%d exchanges for three reads", n.Load())
	}
	// Its file (a job's, on tmpfs) is rewritten once the credential is
	// another, and not before.
	var fs syscall.Statfs_t
	shm := syscall.Statfs("/dev/shm", &fs) == nil && fs.Type == 0x01021994
	dir := "/dev/shm"
	if shm {
		if dir, err = os.MkdirTemp("/dev/shm", "st-go-exchange-"); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if _, err := m.WriteFiles("API_KEY", dir, "files", -1, -1); err != nil {
			t.Fatal(err)
		}
		r, err := m.RefreshFiles("API_KEY", dir, "files")
		if err != nil || len(r.Rewritten) != 0 || r.NextIn == nil || *r.NextIn < 1 || *r.NextIn > 150 {
			t.Fatalf("unchanged: %+v %v", r, err)
		}
	}
	v, _, changed, err := m.ReportFailure("API_KEY", "")
	if err != nil || v != "at_go_2" || !changed {
		t.Fatalf("after the API refused it: %q %v %v", v, changed, err)
	}
	if shm {
		r, err := m.RefreshFiles("API_KEY", dir, "files")
		b, _ := os.ReadFile(filepath.Join(dir, "API_KEY"))
		if err != nil || strings.Join(r.Rewritten, ",") != "API_KEY" || string(b) != "at_go_2" {
			t.Fatalf("replaced: %+v %v %q", r, err, b)
		}
	}
	// A subject token for another audience is refused by name, never sent.
	bad, err := New(map[string]any{"providers": []string{"exchange"}, "exchanges": map[string]any{
		"API_KEY": map[string]any{"profile": "rfc8693", "url": srv.URL + "/token", "audience": "elsewhere",
			"subject_token_file": subject}}})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Get("API_KEY"); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("another audience: %v", err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d exchanges", n.Load())
	}
}
