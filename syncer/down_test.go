package syncer

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
