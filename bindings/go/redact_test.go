package stsecrets

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
)

const placeholder = "<concealed by st-secrets>"

func TestRedactConcealsServedAndHeldValuesInEveryPieceSize(t *testing.T) {
	dir := t.TempDir()
	m, err := New(map[string]any{"file_path": filepath.Join(dir, "s.json"), "providers": []string{"file"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	served, held := "hf_go_served_value_0001", "r8_go_held_value_0000002" // 24 bytes: whole base64 groups
	if err := m.Set("SERVED", served); err != nil {
		t.Fatal(err)
	}
	if err := m.Set("HELD", held); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Get("SERVED"); err != nil || v != served {
		t.Fatal(v, err)
	}
	text := []byte("a " + served + " b " + base64.StdEncoding.EncodeToString([]byte(held)) + " c")
	out, err := Redact(text)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a " + placeholder + " b " + string(text[len(served)+5:]); string(out) != want {
		t.Fatalf("served only: %q", out)
	}
	out, err = m.Redact(text, RedactHeld)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a " + placeholder + " b " + placeholder + " c"; string(out) != want {
		t.Fatalf("with held values: %q", out)
	}
	if _, err := m.Redact(text, 8); err == nil {
		t.Fatal("unknown flag bits are refused")
	}
	for piece := 1; piece <= len(text); piece += 3 {
		var sink bytes.Buffer
		w, err := m.NewRedactWriter(&sink, RedactHeld)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(text); i += piece {
			end := i + piece
			if end > len(text) {
				end = len(text)
			}
			if n, err := w.Write(text[i:end]); err != nil || n != end-i {
				t.Fatal(n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if sink.String() != "a "+placeholder+" b "+placeholder+" c" {
			t.Fatalf("pieces of %d: %q", piece, sink.String())
		}
		if strings.Contains(sink.String(), served) {
			t.Fatal("leaked")
		}
	}
}
