package layout

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestControlPlaneBinary(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		// sibling: nil for none; else its mode and age relative to vnest.
		sibling *os.FileMode
		dir     bool
		newer   time.Duration
		want    string // "vnest" or "sibling"
	}{
		{name: "no vnest-apiserver beside vnest", want: "vnest"},
		{name: "built together (same time)", sibling: mode(0o755), want: "sibling"},
		{name: "newer than vnest", sibling: mode(0o755), newer: time.Minute, want: "sibling"},
		{name: "older than vnest: left from an earlier build", sibling: mode(0o755), newer: -time.Minute, want: "vnest"},
		{name: "not executable", sibling: mode(0o644), want: "vnest"},
		{name: "a directory of that name", dir: true, want: "vnest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			vnest := filepath.Join(dir, "vnest")
			writeExecutable(t, vnest, 0o755, now)
			sibling := filepath.Join(dir, ControlPlaneBinaryName)
			switch {
			case tt.dir:
				if err := os.Mkdir(sibling, 0o755); err != nil {
					t.Fatal(err)
				}
			case tt.sibling != nil:
				writeExecutable(t, sibling, *tt.sibling, now.Add(tt.newer))
			}
			want := vnest
			if tt.want == "sibling" {
				want = sibling
			}
			if got := ControlPlaneBinary(vnest); got != want {
				t.Errorf("ControlPlaneBinary(%s) = %s, want %s", vnest, got, want)
			}
		})
	}
	if got := ControlPlaneBinary("/nonexistent/vnest"); got != "/nonexistent/vnest" {
		t.Errorf("ControlPlaneBinary of a missing vnest = %s, want it unchanged", got)
	}
}

func mode(m os.FileMode) *os.FileMode { return &m }

func writeExecutable(t *testing.T, path string, mode os.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/true\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}
