package e2e

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// vnestBin is the absolute path of the binary under test, set by TestMain.
var vnestBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	bin, err := findBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	vnestBin = bin
	os.Exit(m.Run())
}

// findBinary returns $VNEST_BIN, or bin/vnest, as an absolute path. A relative path is taken from
// the repository root, where `go test` is usually typed, not from the package directory it runs in.
func findBinary() (string, error) {
	bin := os.Getenv("VNEST_BIN")
	if bin == "" {
		bin = filepath.Join("bin", "vnest")
	}
	if !filepath.IsAbs(bin) {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		bin = filepath.Join(root, bin)
	}
	info, err := os.Stat(bin)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("vnest binary not found at %s: run `make build` at the repository root first (or set VNEST_BIN)", bin)
	case err != nil:
		return "", err
	case !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not an executable file: run `make build` at the repository root (or set VNEST_BIN)", bin)
	}
	return bin, nil
}

// repoRoot walks up from the working directory (the package directory under `go test`) to the
// directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; set VNEST_BIN to an absolute path")
		}
		dir = parent
	}
}
