package syncer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

var podsResource = schema.GroupResource{Resource: "pods"}

// admissionError is a super apiserver's answer to a plain error of an admission plugin
// (PodNodeSelector's, not set up): 500, reason Unknown.
var admissionError = &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
	Message: "missing namespaceLister"}}

func TestWorthTelling(t *testing.T) {
	cases := map[string]struct {
		err  error
		want bool
	}{
		"internal error":                                         {apierrors.NewInternalError(errors.New("etcd down")), true},
		"plain admission error: 500, Unknown":                    {admissionError, true},
		"webhook denial without a code: 400":                     {apierrors.NewBadRequest(`admission webhook "deny.example.com" denied the request`), true},
		"webhook down":                                           {apierrors.NewInternalError(errors.New(`failed calling webhook "w.example.com": connection refused`)), true},
		"wrapped":                                                {fmt.Errorf("binding the tenant pod to n1: %w", apierrors.NewServiceUnavailable("x")), true},
		"joined with nil, as a pod's create":                     {errors.Join(apierrors.NewInternalError(errors.New("x")), nil), true},
		"forbidden: SuperClusterRejected's":                      {apierrors.NewForbidden(podsResource, "web", errors.New("quota")), false},
		"invalid: SuperClusterRejected's":                        {apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", nil), false},
		"PodTolerationRestriction's 500: SuperClusterRejected's": {tolerationsRefusal("namespace"), false},
		"token Secret refused after the pod":                     {errors.Join(nil, apierrors.NewForbidden(podsResource, "web", errors.New("x"))), false},
		"conflict":                                               {apierrors.NewConflict(podsResource, "web", errors.New("changed")), false},
		"not found":                                              {apierrors.NewNotFound(podsResource, "web"), false},
		"appeared meanwhile":                                     {fmt.Errorf("super object x appeared meanwhile: %w", apierrors.NewAlreadyExists(podsResource, "web")), false},
		"waiting for a super object to go":                       {errors.New("waiting for super object ns/web of an earlier tenant object to go"), false},
		"not owned":                                              {fmt.Errorf("super namespace x %w", errNotOwned), false},
		"cancelled":                                              {fmt.Errorf("creating: %w", context.Canceled), false},
		"no answer (a tenant apiserver is down)":                 {errors.New("dial tcp 10.0.0.1:6443: connect: connection refused"), false},
		"the tenant's refusal: forbidden":                        {inTenant(apierrors.NewForbidden(podsResource, "web", errors.New("denied by a policy"))), true},
		"the tenant's refusal: invalid":                          {inTenant(fmt.Errorf("binding: %w", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", nil))), true},
		"the tenant's internal error":                            {inTenant(apierrors.NewInternalError(errors.New("x"))), true},
		"the tenant's conflict":                                  {inTenant(apierrors.NewConflict(podsResource, "web", errors.New("changed"))), false},
		"the tenant's not found":                                 {inTenant(apierrors.NewNotFound(podsResource, "web")), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := worthTelling(tc.err); got != tc.want {
				t.Errorf("worthTelling(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestPersistentSyncErrorEvent: a tenant pod whose sync keeps failing with an error the tenant
// hears of nothing else about gets one SuperClusterError event, at the failuresBeforeEvent-th
// failure in a row; a refusal gets its SuperClusterRejected events only, and the failures the
// syncer lives with none.
func TestPersistentSyncErrorEvent(t *testing.T) {
	superNS := &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner)}
	tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	const rounds = failuresBeforeEvent + 2
	every := make([]int, rounds)
	for i := range every {
		every[i] = i + 1
	}
	cases := map[string]struct {
		verb string // the super write that fails
		err  error
		// inTenant: the write that fails is the tenant's (verb on its pods: the binding),
		// under a super pod that runs
		inTenant bool
		tenant   []object
		super    []object
		want     map[string][]int // event reason: the failures in a row it came at
	}{
		"create: internal error": {
			verb: "create", err: apierrors.NewInternalError(errors.New("etcd down")),
			want: map[string][]int{reasonSuperClusterError: {failuresBeforeEvent}},
		},
		"create: plain admission error": {
			verb: "create", err: admissionError,
			want: map[string][]int{reasonSuperClusterError: {failuresBeforeEvent}},
		},
		"create: webhook denial without a code": {
			verb: "create", err: apierrors.NewBadRequest(`admission webhook "deny.example.com" denied the request`),
			want: map[string][]int{reasonSuperClusterError: {failuresBeforeEvent}},
		},
		"create: conflict": {
			verb: "create", err: apierrors.NewConflict(podsResource, "web", errors.New("changed")),
		},
		"create: forbidden is SuperClusterRejected's": {
			verb: "create", err: apierrors.NewForbidden(podsResource, "web", errors.New(`exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1`)),
			want: map[string][]int{"SuperClusterRejected": every},
		},
		"create: PodTolerationRestriction's 500 is SuperClusterRejected's": {
			verb: "create", err: tolerationsRefusal("namespace"),
			want: map[string][]int{"SuperClusterRejected": every},
		},
		"create: no answer": {
			verb: "create", err: errors.New("dial tcp 10.0.0.1:6443: connect: connection refused"),
		},
		"the tenant's binding refused by its own admission": {
			verb: "create", inTenant: true, err: apierrors.NewForbidden(podsResource, "web", errors.New(`ValidatingAdmissionPolicy 'no-bind' denied request`)),
			want: map[string][]int{reasonTenantWriteFailed: {failuresBeforeEvent}},
		},
		"the tenant's binding: internal error": {
			verb: "create", inTenant: true, err: apierrors.NewInternalError(errors.New("etcd down")),
			want: map[string][]int{reasonTenantWriteFailed: {failuresBeforeEvent}},
		},
		"delete of a gone tenant pod's super pod: internal error, no tenant object to tell": {
			verb: "delete", err: apierrors.NewInternalError(errors.New("etcd down")),
			tenant: []object{tenantNS}, super: []object{superNS, MakePod(testSuperNS, "web").Owned("uid-web").Obj()},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.tenant == nil {
				tc.tenant, tc.super = []object{tenantNS, MakePod("default", "web").Obj()}, []object{superNS}
			}
			if tc.inTenant {
				tc.super = append(tc.super, MakePod(testSuperNS, "web").Owned("uid-web").Node("node-1").Phase(corev1.PodRunning).HostIP("10.0.0.1").Obj())
			}
			h := newHarness(t, tc.super, tc.tenant)
			ctx := testContext(t)
			failing := h.super
			if tc.inTenant {
				failing = h.tenantCS
			}
			failing.PrependReactor(tc.verb, "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			web := objKey{Kind: kindPod, Namespace: "default", Name: "web"}
			got := map[string][]int{}
			for failure := 1; failure <= rounds; failure++ {
				h.s.process(ctx, testKey, web)
				if n := h.s.queue.NumRequeues(testKey, web); n != failure {
					t.Fatalf("after failure %d the key has %d requeues", failure, n)
				}
				for _, e := range events(h.recorder) {
					reason := strings.Fields(e)[1]
					got[reason] = append(got[reason], failure)
					if (reason == reasonSuperClusterError || reason == reasonTenantWriteFailed) && !strings.Contains(e, tc.err.Error()) {
						t.Errorf("event %q does not say the error %q", e, tc.err)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("events by reason: the failures they came at (-want +got):\n%s", diff)
			}
		})
	}
}
