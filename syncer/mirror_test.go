package syncer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkMirrorSync checks what an up sync of mirrors did: exactly the tenant writes want, no
// super write, and a MirrorNameTaken event when wantEvent (a tenant's own object in the way).
func checkMirrorSync(t *testing.T, h *harness, want []string, wantEvent bool) {
	t.Helper()
	if diff := cmp.Diff(want, writes(h.tenantCS)); diff != "" {
		t.Errorf("tenant writes (-want +got):\n%s", diff)
	}
	if got := writes(h.super); len(got) > 0 {
		t.Errorf("super writes: %v", got)
	}
	if ev := events(h.recorder); wantEvent != (len(ev) == 1 && strings.Contains(ev[0], "MirrorNameTaken")) {
		t.Errorf("events = %q, want a MirrorNameTaken event: %v", ev, wantEvent)
	}
}
