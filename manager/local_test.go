package manager

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestLocalRestartsOnNewPKI: the local control plane runs on while its arguments and PKI stay
// the same, and is restarted when the PKI changes (a renewed certificate), since the process
// reads its PKI files only at start. A shell script that sleeps stands in for vnest.
func TestLocalRestartsOnNewPKI(t *testing.T) {
	binary := filepath.Join(t.TempDir(), "vnest")
	if err := os.WriteFile(binary, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	vc := makeVC("demo").Key("demo-1").Obj()
	p := newLocalProvisioner(t.TempDir(), binary, net.ParseIP("127.0.0.1"), 17700, 17799,
		fake.NewClientBuilder().WithScheme(NewScheme()).Build())
	t.Cleanup(func() { _, _ = p.Teardown(testContext(t), vc) })
	ctx := testContext(t)
	ep, err := p.Endpoint(ctx, vc)
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant{VC: vc, PKI: map[string][]byte{"ca.crt": []byte("old")}, Endpoint: ep}
	pid := func() int {
		t.Helper()
		if _, err := p.Ensure(ctx, tn); err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.tenants[client.ObjectKeyFromObject(vc)].proc.Pid()
	}
	first := pid()
	if again := pid(); again != first {
		t.Errorf("restarted (pid %d → %d) with the same arguments and PKI", first, again)
	}
	tn.PKI = map[string][]byte{"ca.crt": []byte("renewed")}
	if renewed := pid(); renewed == first {
		t.Error("still the same process after the PKI changed: it keeps the old certificates")
	}
}
