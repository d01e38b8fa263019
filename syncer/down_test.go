package syncer

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestMergeMetaKeepsSuperAnnotations checks the annotations mergeMeta leaves on a super object,
// and that stampedMetaEqual sees no difference in the super cluster's own.
func TestMergeMetaKeepsSuperAnnotations(t *testing.T) {
	claim := func(annotations map[string]string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}}
	}
	cases := map[string]struct {
		desired, existing, want map[string]string
	}{
		"the binder's and the scheduler's stay": {
			desired: map[string]string{"example.com/a": "1"},
			existing: map[string]string{"example.com/a": "0", "pv.kubernetes.io/bind-completed": "yes",
				"volume.kubernetes.io/selected-node": "n1", "volume.beta.kubernetes.io/storage-provisioner": "p"},
			want: map[string]string{"example.com/a": "1", "pv.kubernetes.io/bind-completed": "yes",
				"volume.kubernetes.io/selected-node": "n1", "volume.beta.kubernetes.io/storage-provisioner": "p"},
		},
		"other super annotations go": {
			desired:  map[string]string{"example.com/a": "1"},
			existing: map[string]string{"example.com/b": "2"},
			want:     map[string]string{"example.com/a": "1"},
		},
		"one the tenant names is the tenant's": {
			desired:  map[string]string{"volume.beta.kubernetes.io/storage-class": "fast"},
			existing: map[string]string{"volume.beta.kubernetes.io/storage-class": "slow"},
			want:     map[string]string{"volume.beta.kubernetes.io/storage-class": "fast"},
		},
		"a tenant claim without annotations": {
			existing: map[string]string{"pv.kubernetes.io/bind-completed": "yes"},
			want:     map[string]string{"pv.kubernetes.io/bind-completed": "yes"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			desired, got := claim(maps.Clone(tc.desired)), claim(maps.Clone(tc.existing))
			mergeMeta(desired, got)
			if diff := cmp.Diff(tc.want, got.Annotations, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.desired, desired.Annotations, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("desired changed (-before +after):\n%s", diff)
			}
			if !stampedMetaEqual(desired, got) {
				t.Errorf("merged annotations %v differ from desired %v", got.Annotations, desired.Annotations)
			}
		})
	}
}

// tolerationsRefusal is what a client of a super apiserver gets when its PodTolerationRestriction
// admission plugin refuses a pod's tolerations: the plugin's plain error, as a 500 of no reason.
func tolerationsRefusal(scope string) error {
	return apierrors.FromObject(&metav1.Status{Status: metav1.StatusFailure, Code: 500,
		Message: "pod tolerations (possibly merged with namespace default tolerations) conflict with its " + scope + " whitelist"})
}

// TestSuperRefused: refusals of an object's content count, whatever status they come with;
// failures that may pass do not.
func TestSuperRefused(t *testing.T) {
	pod := schema.GroupResource{Resource: "pods"}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"forbidden":                               {err: apierrors.NewForbidden(pod, "web", errors.New("violates PodSecurity")), want: true},
		"invalid":                                 {err: apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", nil), want: true},
		"PodTolerationRestriction, namespace":     {err: tolerationsRefusal("namespace"), want: true},
		"PodTolerationRestriction, cluster":       {err: tolerationsRefusal("cluster"), want: true},
		"PodTolerationRestriction, wrapped":       {err: fmt.Errorf("updating: %w", tolerationsRefusal("namespace")), want: true},
		"an internal error":                       {err: apierrors.NewInternalError(errors.New("etcdserver: request timed out"))},
		"a 500 without a reason":                  {err: apierrors.FromObject(&metav1.Status{Status: metav1.StatusFailure, Code: 500, Message: "boom"})},
		"the whitelist message with another code": {err: apierrors.NewConflict(pod, "web", errors.New("pod tolerations (possibly merged with namespace default tolerations) conflict with its namespace whitelist"))},
		"a timeout":                               {err: apierrors.NewTimeoutError("slow", 1)},
		"none":                                    {},
	} {
		if got := superRefused(tc.err); got != tc.want {
			t.Errorf("%s: superRefused(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
}
