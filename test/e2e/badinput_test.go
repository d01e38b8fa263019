package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBadInput checks that `vnest up` rejects bad flags and a busy port quickly, with a message
// naming the problem, before it starts anything.
func TestBadInput(t *testing.T) {
	regularFile := filepath.Join(t.TempDir(), "regular-file")
	if err := os.WriteFile(regularFile, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const busyPort = 16503
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(busyPort)))
	if err != nil {
		t.Fatalf("occupying port %d: %v", busyPort, err)
	}
	t.Cleanup(func() { ln.Close() })

	tests := []struct {
		name    string
		dataDir string // "" means a fresh t.TempDir()
		nodes   string
		port    int
		want    []string // substrings of stderr
	}{{
		name:  "unknown nodes mode",
		nodes: "bogus",
		port:  16523,
		want:  []string{`invalid --nodes "bogus": must be one of auto, real, simulated`},
	}, {
		name:    "data dir under a regular file",
		dataDir: filepath.Join(regularFile, "x"),
		nodes:   "simulated",
		port:    16543,
		want:    []string{"--data-dir"},
	}, {
		name:  "busy port",
		nodes: "simulated",
		port:  busyPort,
		want:  []string{fmt.Sprintf("port %d", busyPort), "already in use"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dataDir
			if dir == "" {
				dir = t.TempDir()
			}
			stderr, elapsed, err := runVnest(t, 30*time.Second,
				"up", "--data-dir", dir, "--nodes", tt.nodes, "--apiserver-port", strconv.Itoa(tt.port))

			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) {
				t.Fatalf("vnest up = %v, want a non-zero exit; stderr:\n%s", err, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
			if elapsed >= 10*time.Second {
				t.Errorf("vnest up took %v to reject bad input, want < 10s", elapsed.Round(time.Millisecond))
			}
			if _, err := os.Stat(filepath.Join(dir, "super.kubeconfig")); err == nil {
				t.Errorf("vnest up wrote a kubeconfig despite the bad input")
			}
		})
	}
}

// runVnest runs the binary with args and returns its stderr, how long it ran and the error of
// exec.Cmd.Run. If it outlives timeout it gets SIGINT, then SIGKILL a minute later, so a run
// that wrongly starts a cluster still gets the chance to clean up.
func runVnest(t *testing.T, timeout time.Duration, args ...string) (string, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vnestBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("vnest %s still ran after %v; stderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	return stderr.String(), elapsed, err
}
