package tenantctl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/manager"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func vc(ns, name string, phase v1alpha1.VirtualClusterPhase, provisioner v1alpha1.Provisioner, endpoint string, age time.Duration, conds ...metav1.Condition) *v1alpha1.VirtualCluster {
	v := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(now.Add(-age))}}
	if provisioner != "" {
		v.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Provisioner: provisioner}
	}
	v.Status = v1alpha1.VirtualClusterStatus{Phase: phase, Endpoint: endpoint, Conditions: conds, KubeconfigSecretName: name + "-kubeconfig"}
	return v
}

func newClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(manager.NewScheme()).WithObjects(objs...).WithStatusSubresource(&v1alpha1.VirtualCluster{}).Build()
}

func TestList(t *testing.T) {
	c := newClient(
		vc("default", "demo", v1alpha1.PhaseRunning, "", "https://192.0.2.2:7000", 3*time.Hour),
		vc("team", "b", v1alpha1.PhaseProvisioning, v1alpha1.ProvisionerCluster, "", 90*time.Second),
	)
	cases := map[string]struct {
		opts    ListOptions
		want    string
		wantErr string
	}{
		"one namespace": {ListOptions{Namespace: "default"}, "" +
			"NAME   PHASE     PROVISIONER   ENDPOINT                 AGE\n" +
			"demo   Running   local         https://192.0.2.2:7000   3h\n", ""},
		"all namespaces": {ListOptions{AllNamespaces: true}, "" +
			"NAMESPACE   NAME   PHASE          PROVISIONER   ENDPOINT                 AGE\n" +
			"default     demo   Running        local         https://192.0.2.2:7000   3h\n" +
			"team        b      Provisioning   cluster       <none>                   90s\n", ""},
		"empty namespace": {ListOptions{Namespace: "empty"}, "", "No virtual clusters found in namespace empty.\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := List(t.Context(), c, tc.opts, &out, &errOut, now); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErr, errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

var ready = metav1.Condition{Type: v1alpha1.ConditionKubeconfigReady, Status: metav1.ConditionTrue, Reason: "Ready"}

// demo is a running VirtualCluster default/demo and its kubeconfig Secret.
func demo() []client.Object {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-kubeconfig", Namespace: "default"},
		Data: map[string][]byte{manager.KubeconfigKey: []byte("apiVersion: v1\nkind: Config\n")}}
	return []client.Object{vc("default", "demo", v1alpha1.PhaseRunning, "", "https://x", time.Hour, ready), secret}
}

func TestKubeconfig(t *testing.T) {
	waiting := metav1.Condition{Type: v1alpha1.ConditionControlPlaneReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonCredentialsInvalid,
		Message: "etcd credentials Secret default/x not found"}
	c := newClient(append(demo(),
		vc("default", "broken", v1alpha1.PhaseFailed, "", "", time.Hour, waiting),
		vc("default", "new", "", "", "", time.Second),
		vc("default", "nosecret", v1alpha1.PhaseRunning, "", "https://x", time.Hour, ready),
	)...)
	cases := map[string]struct {
		name, want, wantErr string
	}{
		"prints":              {"demo", "apiVersion: v1\nkind: Config\n", ""},
		"not found":           {"nope", "", "virtual cluster default/nope not found (vnest list -n default shows the ones there are)"},
		"failed":              {"broken", "", "virtual cluster default/broken is not ready yet (phase Failed): ControlPlaneReady=False CredentialsInvalid: etcd credentials Secret default/x not found"},
		"never reconciled":    {"new", "", "virtual cluster default/new is not ready yet (phase not reconciled yet: is the vnest manager running?)"},
		"Secret gone missing": {"nosecret", "", `reading the kubeconfig Secret default/nosecret-kubeconfig of virtual cluster nosecret: secrets "nosecret-kubeconfig" not found`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := Kubeconfig(t.Context(), c, KubeconfigOptions{Name: tc.name, Namespace: "default"}, &out)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
			if out.String() != tc.want {
				t.Errorf("output = %q, want %q", out.String(), tc.want)
			}
		})
	}

	file := filepath.Join(t.TempDir(), "demo.kubeconfig")
	var out bytes.Buffer
	if err := Kubeconfig(t.Context(), c, KubeconfigOptions{Name: "demo", Namespace: "default", Output: file}, &out); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("written file: %v, mode %v; want 0600", err, st.Mode())
	}

	// A file that is there already, readable by all, holds the admin
	// credentials only once it is the owner's alone.
	there := filepath.Join(t.TempDir(), "there.kubeconfig")
	if err := os.WriteFile(there, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Kubeconfig(t.Context(), c, KubeconfigOptions{Name: "demo", Namespace: "default", Output: there}, &out); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(there); err != nil || string(data) != "apiVersion: v1\nkind: Config\n" {
		t.Errorf("the existing file holds %q (%v), want the kubeconfig", data, err)
	}
	if st, err := os.Stat(there); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("an existing file written: %v, mode %v; want 0600", err, st.Mode())
	}

	// A kubeconfig that links to one kept elsewhere stays a link, and what it links to is written.
	kept := filepath.Join(t.TempDir(), "kept.kubeconfig")
	link := filepath.Join(t.TempDir(), "link.kubeconfig")
	if err := os.WriteFile(kept, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(kept, link); err != nil {
		t.Fatal(err)
	}
	if err := Kubeconfig(t.Context(), c, KubeconfigOptions{Name: "demo", Namespace: "default", Output: link}, &out); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != kept {
		t.Errorf("%s after the write: a link to %q (%v), want one to %s", link, target, err, kept)
	}
	if data, err := os.ReadFile(kept); err != nil || string(data) != "apiVersion: v1\nkind: Config\n" {
		t.Errorf("the linked file holds %q (%v), want the kubeconfig", data, err)
	}
}

// TestKubeconfigWriteFails: a kubeconfig whose write fails half way, as on a full disk (here the
// file size limit stops it at 10 bytes), leaves the old one whole and no temporary file; it used
// to be cut short in place.
func TestKubeconfigWriteFails(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "demo.kubeconfig")
	const old = "apiVersion: v1\nkind: Config\nusers: [the old ones]\n"
	if err := os.WriteFile(file, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 10, Max: limit.Max}); err != nil {
		t.Fatal(err)
	}
	err := Kubeconfig(t.Context(), newClient(demo()...), KubeconfigOptions{Name: "demo", Namespace: "default", Output: file}, io.Discard)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Errorf("error = %v, want %v", err, syscall.EFBIG)
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != old {
		t.Errorf("after the failed write %s holds %q (%v), want the old kubeconfig %q", file, data, err, old)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("after the failed write %s holds %v (%v), want the kubeconfig alone", dir, entries, err)
	}
}

func TestCreateAndDelete(t *testing.T) {
	c := newClient(vc("default", "taken", "", "", "", time.Hour))
	var out bytes.Buffer
	if err := Create(t.Context(), c, CreateOptions{Name: "demo", Namespace: "default", Provisioner: "cluster"}, &out); err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.VirtualCluster{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "demo"}, got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.ControlPlane == nil || got.Spec.ControlPlane.Provisioner != v1alpha1.ProvisionerCluster {
		t.Errorf("spec = %+v, want provisioner cluster", got.Spec)
	}
	for name, tc := range map[string]struct {
		err     error
		wantErr string
	}{
		"bad provisioner": {Create(t.Context(), c, CreateOptions{Name: "x", Namespace: "default", Provisioner: "docker"}, &out),
			`invalid --provisioner "docker": must be local or cluster`},
		"exists":        {Create(t.Context(), c, CreateOptions{Name: "taken", Namespace: "default"}, &out), "virtual cluster default/taken already exists"},
		"delete absent": {Delete(t.Context(), c, DeleteOptions{Name: "nope", Namespace: "default"}, &out), "virtual cluster default/nope not found (vnest list -n default shows the ones there are)"},
		"delete":        {Delete(t.Context(), c, DeleteOptions{Name: "demo", Namespace: "default", Wait: true, Timeout: 5 * time.Second}, &out), ""},
	} {
		if got := errString(tc.err); got != tc.wantErr {
			t.Errorf("%s: error = %q, want %q", name, got, tc.wantErr)
		}
	}
	if !strings.Contains(out.String(), "virtualcluster default/demo deleted") {
		t.Errorf("output %q lacks the deletion", out.String())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestWaitInterrupted: a --wait cut short (Ctrl-C cancels the context)
// says so, not that the timeout passed.
func TestWaitInterrupted(t *testing.T) {
	c := newClient()
	ctx, cancel := context.WithTimeout(t.Context(), 3*pollInterval)
	defer cancel()
	var out bytes.Buffer
	err := Create(ctx, c, CreateOptions{Name: "demo", Namespace: "default", Wait: true, Timeout: 3 * time.Minute}, &out)
	const want = "virtual cluster default/demo is still not done when the wait stopped (context deadline exceeded) (phase not reconciled yet"
	if got := errString(err); !strings.HasPrefix(got, want) {
		t.Errorf("error = %q, want %q…", got, want)
	}
}
