package supercluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// TestWaitVnestImage: vnest up is ready only once the vnest image, imported while the kubelet
// starts, is in containerd; a failed import, a dead child or a stop ends the wait with its error.
func TestWaitVnestImage(t *testing.T) {
	importFailed, childDied := errors.New("importing vnest.local/vnest:dev: boom"), errors.New("kubelet exited")
	cases := map[string]struct {
		imported   bool // the import ended before the wait, with importErr
		importErr  error
		failed     error // a child died before the wait, unless nil
		cancel     bool
		noRealNode bool
		want       error
	}{
		"no real node: nothing to wait for": {noRealNode: true},
		"imported":                          {imported: true},
		"import failed":                     {imported: true, importErr: importFailed, want: importFailed},
		"a child died meanwhile":            {failed: childDied, want: childDied},
		"stopped meanwhile":                 {cancel: true, want: context.Canceled},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := &running{}
			if !tc.noRealNode {
				r.vnestImage = make(chan error, 1)
			}
			if tc.imported {
				r.vnestImage <- tc.importErr
			}
			failed := make(chan error, 1)
			if tc.failed != nil {
				failed <- tc.failed
			}
			ctx, cancel := context.WithCancel(t.Context())
			if tc.cancel {
				cancel()
			}
			defer cancel()
			if err := r.waitVnestImage(ctx, failed); !errors.Is(err, tc.want) {
				t.Errorf("waitVnestImage: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestContainerdExitIsReported: containerd that exits after vnest up saw its socket is reported
// like any other child's exit, which ends vnest up with the reason. It was started without an
// exit report, so vnest up went on as ready with no container runtime under its node.
func TestContainerdExitIsReported(t *testing.T) {
	dir := t.TempDir()
	c := &config{Options: &Options{}, dataDir: dir, runDir: filepath.Join(dir, "run")}
	if err := os.MkdirAll(c.runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "containerd")
	script := "#!/bin/sh\ntouch " + c.containerdSocket() + "\nsleep 0.2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	r := &running{c: c, onExit: func(err error) { exited <- err }}
	defer r.stop(context.WithoutCancel(t.Context())) //nolint:errcheck
	waitFor := func(what string, cond func(context.Context) (bool, error)) error {
		return wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, cond)
	}
	if err := r.startContainerd(t.Context(), fake, waitFor); err != nil {
		t.Fatalf("startContainerd: %v", err)
	}
	select {
	case err := <-exited:
		if !strings.Contains(err.Error(), "containerd exited unexpectedly") {
			t.Errorf("reported %v, want containerd's unexpected exit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("containerd exited and nothing was reported")
	}
}
