package stsecrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// WriteFiles and RevokeLedger: a job's files in /dev/shm (where it is
// tmpfs), in the library's order; bad input named; a ledger others may
// read refused.
func TestWriteFilesAndRevokeLedger(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	m, err := New(map[string]any{"file_path": file, "providers": []string{"file"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Set("HF_TOKEN", "hf_go_job"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteFiles("1BAD", t.TempDir(), "files", -1, -1); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "1BAD") {
		t.Fatalf("bad list: %v", err)
	}
	var fs syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &fs) == nil && fs.Type == 0x01021994 {
		dir, err := os.MkdirTemp("/dev/shm", "st-go-job-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if _, err := m.WriteFiles("HF_TOKEN,GONE", dir, "files", -1, -1); !errors.Is(err, ErrNotFound) ||
			!strings.Contains(err.Error(), "GONE") {
			t.Fatalf("a key set nowhere: %v", err)
		}
		vars, err := m.WriteFiles("HF_TOKEN,DB=HF_TOKEN", dir, "files", -1, -1)
		want := []string{"HF_TOKEN_PATH=" + dir + "/hf-token", "DB_FILE=" + dir + "/DB"}
		if err != nil || strings.Join(vars, " ") != strings.Join(want, " ") {
			t.Fatalf("%v %v", vars, err)
		}
		if b, err := os.ReadFile(dir + "/hf-token"); err != nil || string(b) != "hf_go_job" {
			t.Fatalf("%q %v", b, err)
		}
	}
	ledger := filepath.Join(t.TempDir(), "ledger")
	if r, err := m.RevokeLedger(ledger); err != nil || r.Leases != 0 || r.Tokens != 0 || len(r.Failed) != 0 {
		t.Fatalf("a missing ledger: %+v %v", r, err)
	}
	if err := os.WriteFile(ledger, []byte(`{"login":"s.x"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RevokeLedger(ledger); err == nil {
		t.Fatal("a ledger others may read, and no Vault: revoked")
	}
}
