package tenantctl

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/manager"
)

var vcResource = schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "virtualclusters"}

// newInterceptedClient is newClient with funcs in front of it; a Get with
// a context that is done fails as a real client's request does.
func newInterceptedClient(funcs interceptor.Funcs, objs ...client.Object) client.Client {
	get := funcs.Get
	funcs.Get = func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if get != nil {
			return get(ctx, c, key, obj, opts...)
		}
		return c.Get(ctx, key, obj, opts...)
	}
	return fake.NewClientBuilder().WithScheme(manager.NewScheme()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.VirtualCluster{}).WithInterceptorFuncs(funcs).Build()
}

// TestWaitRetriesReadErrors: a read of the VirtualCluster that fails for a
// reason that may pass (the apiserver timed out or was unavailable) does
// not end a --wait, as it does not end kubectl wait: the next poll looks
// again, until the timeout, which then names the last failure. A read
// that cannot go through by waiting (forbidden) ends it at once.
func TestWaitRetriesReadErrors(t *testing.T) {
	timeout := apierrors.NewTimeoutError("request timed out", 1)
	unavailable := apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
	forbidden := apierrors.NewForbidden(vcResource, "demo", errors.New("RBAC: access denied"))
	cases := map[string]struct {
		errs    []error // what the reads return first, in order; then the object, Running
		timeout time.Duration
		wantErr string // a prefix; "" for none
	}{
		"a timeout, then Running":    {errs: []error{timeout}, timeout: 10 * time.Second},
		"two failures, then Running": {errs: []error{unavailable, timeout}, timeout: 10 * time.Second},
		"failing until the timeout": {
			errs: []error{timeout, timeout, timeout, timeout, timeout, timeout, timeout, timeout}, timeout: time.Second,
			wantErr: "virtual cluster default/demo is still not done after 1s: reading it failed: reading virtual cluster default/demo: Timeout: request timed out",
		},
		"forbidden ends it": {
			errs: []error{forbidden}, timeout: 10 * time.Second,
			wantErr: `reading virtual cluster default/demo: virtualclusters.tenancy.vnest.dev "demo" is forbidden: RBAC: access denied`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var reads atomic.Int32
			c := newInterceptedClient(interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if n := int(reads.Add(1)); n <= len(tc.errs) {
						return tc.errs[n-1]
					}
					if err := c.Get(ctx, key, obj, opts...); err != nil {
						return err
					}
					vc := obj.(*v1alpha1.VirtualCluster)
					vc.Status.Phase, vc.Status.Endpoint = v1alpha1.PhaseRunning, "https://192.0.2.1:7000"
					return nil
				},
			})
			var out bytes.Buffer
			err := Create(t.Context(), c, CreateOptions{Name: "demo", Namespace: "default", Wait: true, Timeout: tc.timeout}, &out)
			if got := errString(err); tc.wantErr == "" && got != "" || !strings.HasPrefix(got, tc.wantErr) {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
			if tc.wantErr == "" && !strings.Contains(out.String(), "virtualcluster default/demo is Running at https://192.0.2.1:7000") {
				t.Errorf("output %q, want it Running", out.String())
			}
		})
	}
}

// TestWaitTransientFailure: a tenant whose provisioning failed for a
// reason that may pass (Provisioning, ControlPlaneReady False/Retrying)
// is waited for; one that needs a fix (Failed) ends the wait.
func TestWaitTransientFailure(t *testing.T) {
	retrying := metav1.Condition{Type: v1alpha1.ConditionControlPlaneReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonRetrying,
		Message: "writing Secret default/demo-pki: Timeout: request timed out"}
	for name, tc := range map[string]struct {
		first   v1alpha1.VirtualClusterPhase
		wantErr string
	}{
		"Provisioning, Retrying": {v1alpha1.PhaseProvisioning, ""},
		"Failed":                 {v1alpha1.PhaseFailed, "virtual cluster default/demo is failed (phase Failed): ControlPlaneReady=False Retrying: writing Secret"},
	} {
		t.Run(name, func(t *testing.T) {
			var reads atomic.Int32
			c := newInterceptedClient(interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if err := c.Get(ctx, key, obj, opts...); err != nil {
						return err
					}
					vc := obj.(*v1alpha1.VirtualCluster)
					if reads.Add(1) == 1 {
						vc.Status.Phase, vc.Status.Conditions = tc.first, []metav1.Condition{retrying}
					} else {
						vc.Status.Phase, vc.Status.Endpoint = v1alpha1.PhaseRunning, "https://192.0.2.1:7000"
					}
					return nil
				},
			})
			var out bytes.Buffer
			err := Create(t.Context(), c, CreateOptions{Name: "demo", Namespace: "default", Wait: true, Timeout: 10 * time.Second}, &out)
			if got := errString(err); tc.wantErr == "" && got != "" || !strings.HasPrefix(got, tc.wantErr) {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
		})
	}
}

// TestDeleteWaitRecreated: `vnest delete --wait` waits for the
// VirtualCluster it deleted, known by its UID: one created again under its
// name meanwhile (by a GitOps tool, a script) does not keep it waiting.
func TestDeleteWaitRecreated(t *testing.T) {
	old := vc("default", "demo", v1alpha1.PhaseRunning, "", "", time.Hour)
	old.UID = "uid-old"
	c := newInterceptedClient(interceptor.Funcs{
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := c.Delete(ctx, obj, opts...); err != nil {
				return err
			}
			again := vc("default", "demo", "", "", "", 0)
			again.UID = "uid-new"
			return c.Create(ctx, again)
		},
	}, old)
	var out bytes.Buffer
	err := Delete(t.Context(), c, DeleteOptions{Name: "demo", Namespace: "default", Wait: true, Timeout: 2 * time.Second}, &out)
	if err != nil {
		t.Errorf("error = %v, want none", err)
	}
	if want := "virtualcluster default/demo deleted (a new one of that name exists now)"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

// TestWaitTimeoutZero: --timeout 0 looks once, as kubectl wait
// --timeout=0 does: done if it is done, else not done after 0s with the
// condition; it did not look at all, and failed with the expired context.
func TestWaitTimeoutZero(t *testing.T) {
	gone := vc("default", "gone", v1alpha1.PhaseRunning, "", "", time.Hour)
	stays := vc("default", "stays", v1alpha1.PhaseRunning, "", "", time.Hour)
	stays.Finalizers = []string{manager.Finalizer}
	running := vc("default", "running", v1alpha1.PhaseRunning, "", "https://192.0.2.1:7000", time.Hour)
	c := newInterceptedClient(interceptor.Funcs{}, gone, stays, running)
	var out bytes.Buffer
	if err := Delete(t.Context(), c, DeleteOptions{Name: "gone", Namespace: "default", Wait: true}, &out); err != nil {
		t.Errorf("a VirtualCluster deleted at once: error = %v, want none", err)
	}
	err := Delete(t.Context(), c, DeleteOptions{Name: "stays", Namespace: "default", Wait: true}, &out)
	if want := "virtual cluster default/stays is still not done after 0s (phase Running)"; errString(err) != want {
		t.Errorf("a VirtualCluster being deleted: error = %q, want %q", errString(err), want)
	}
	vc, err := waitFor(t.Context(), c, "default", "running", 0, func(vc *v1alpha1.VirtualCluster) (bool, error) {
		return vc.Status.Phase == v1alpha1.PhaseRunning, nil
	})
	if err != nil || vc == nil || vc.Status.Endpoint != "https://192.0.2.1:7000" {
		t.Errorf("a Running VirtualCluster: waitFor = %v, %v; want it", vc, err)
	}
}
