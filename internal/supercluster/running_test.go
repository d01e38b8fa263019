package supercluster

import (
	"context"
	"errors"
	"testing"
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
