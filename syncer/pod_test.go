package syncer

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// tokenVolume is what the tenant's ServiceAccount admission adds to every pod.
func tokenVolume() corev1.Volume {
	return corev1.Volume{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
		},
	}}}
}

func TestTranslatePod(t *testing.T) {
	admitted := func() *corev1.Pod {
		p := MakePod("default", "web").Label("app", "web").Label(ownership.LabelClusterKey, "forged").Obj()
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1"}}
		p.ResourceVersion = "7"
		p.Spec.Volumes = []corev1.Volume{tokenVolume(), {Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}, {Name: "data", MountPath: "/data"}}
		p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount = "default", "default"
		p.Spec.SchedulerName = "default-scheduler"
		p.Spec.Priority, p.Spec.PriorityClassName = ptr.To[int32](1000), "high"
		p.Spec.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
		p.Spec.NodeSelector = map[string]string{"disk": "ssd", "zone": "tenant-choice"}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
		p.Status.Phase = corev1.PodPending
		return p
	}
	policy := v1alpha1.PolicySpec{
		NodeSelector: map[string]string{"zone": "tenants"},
		Tolerations: []corev1.Toleration{
			{Key: "tenants", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		},
	}
	wantMeta := metav1.ObjectMeta{
		Namespace: testSuperNS, Name: "web",
		Labels:      map[string]string{"app": "web", ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"},
		Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-web", ownership.AnnotationVirtualCluster: "default/demo"},
	}
	cases := map[string]struct {
		pod    *corev1.Pod
		policy v1alpha1.PolicySpec
		want   *corev1.Pod
	}{
		"minimal pod": {
			pod: MakePod("default", "web").Obj(),
			want: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web",
					Labels:      map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"},
					Annotations: wantMeta.Annotations},
				Spec: corev1.PodSpec{
					Containers:                   []corev1.Container{{Name: "main", Image: "vnest.local/busybox:1"}},
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
				},
			},
		},
		"admitted pod with policy": {
			pod:    admitted(),
			policy: policy,
			want: &corev1.Pod{
				ObjectMeta: wantMeta,
				Spec: corev1.PodSpec{
					Volumes: []corev1.Volume{
						{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
							Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"}, Items: []corev1.KeyToPath{
								{Key: "token", Path: "token"}, {Key: "ca.crt", Path: "ca.crt"}, {Key: "namespace", Path: "namespace"},
							}},
						}}}}},
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
					Containers: []corev1.Container{{Name: "main", Image: "vnest.local/busybox:1",
						VolumeMounts: []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}, {Name: "data", MountPath: "/data"}}}},
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					NodeSelector:                 map[string]string{"disk": "ssd", "zone": "tenants"},
					Tolerations: []corev1.Toleration{
						{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
						{Key: "tenants", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
				},
			},
		},
		"node chosen by the tenant becomes a node affinity": {
			pod: MakePod("default", "web").Node("node-1").Obj(),
			want: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web",
					Labels:      map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"},
					Annotations: wantMeta.Annotations},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
						NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
							{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-1"}},
						}}},
					}}},
					Containers:                   []corev1.Container{{Name: "main", Image: "vnest.local/busybox:1"}},
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := tc.pod.DeepCopy()
			got := translatePod(tc.pod, testOwner, tc.policy, nil)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("translatePod (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tc.pod); diff != "" {
				t.Errorf("translatePod changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPodReferences(t *testing.T) {
	p := MakePod("default", "web").Obj()
	p.Spec.Volumes = []corev1.Volume{
		tokenVolume(),
		{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-vol"}}}},
		{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec-vol"}}},
		{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-proj"}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec-proj"}}},
		}}}},
	}
	p.Spec.InitContainers = []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-envfrom"}}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec-envfrom"}}},
	}}}
	p.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-env"}, Key: "k"}}},
		{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec-env"}, Key: "k"}}},
		{Name: "C", Value: "plain"},
	}
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}, {Name: "sec-vol"}}
	cms, secrets := podReferences(p)
	if diff := cmp.Diff([]string{"cm-env", "cm-envfrom", "cm-proj", "cm-vol"}, cms); diff != "" {
		t.Errorf("configmaps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pull", "sec-env", "sec-envfrom", "sec-proj", "sec-vol"}, secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
}

func TestPodStatusUp(t *testing.T) {
	super := MakePod(testSuperNS, "web").Phase(corev1.PodRunning).HostIP("10.0.0.1").Obj()
	super.Status.PodIP = "10.244.0.5"
	super.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.5"}}
	super.Status.NominatedNodeName = "n"
	super.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	want := super.Status.DeepCopy()
	want.NominatedNodeName = ""
	if diff := cmp.Diff(*want, podStatusUp(super)); diff != "" {
		t.Errorf("podStatusUp (-want +got):\n%s", diff)
	}
}

// TestSyncPod walks the pod life cycle through syncPod and checks the writes on both sides.
func TestSyncPod(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	superNS := &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner)}
	tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	running := MakePod(testSuperNS, "web").Owned("uid-web").Node("node-1").Phase(corev1.PodRunning).HostIP("10.0.0.1").Obj()
	running.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	// gated is the running tenant pod with a readiness gate whose condition is status, or absent.
	gated := func(status corev1.ConditionStatus) *corev1.Pod {
		p := MakePod("default", "web").Node("node-1").Obj()
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
		p.Status = *running.Status.DeepCopy()
		p.Status.Conditions[1] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ReadinessGatesNotReady",
			Message: `corresponding condition of pod readiness gate "example.com/lb" does not exist.`}
		if status != "" {
			p.Status.Conditions[1].Message = `the status of pod readiness gate "example.com/lb" is not "True", but ` + string(status)
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/lb", Status: status})
		}
		return p
	}
	cases := map[string]struct {
		super, tenant         []object
		wantSuper, wantTenant []string
	}{
		"new tenant pod is created in the super cluster": {
			super:     []object{superNS},
			tenant:    []object{tenantNS, MakePod("default", "web").Obj()},
			wantSuper: []string{"create pods demo-5c9a8459-default/web"},
		},
		"first pod of a namespace creates the super namespace": {
			tenant:    []object{tenantNS, MakePod("default", "web").Obj()},
			wantSuper: []string{"create namespaces /demo-5c9a8459-default", "create pods demo-5c9a8459-default/web"},
		},
		"scheduled super pod binds the tenant pod after publishing the node": {
			super:      []object{superNS, node, running},
			tenant:     []object{tenantNS, MakePod("default", "web").Obj()},
			wantTenant: []string{"create nodes /node-1", "create pods/binding default/web", "update nodes/status /node-1"},
		},
		"scheduled super pod binds the tenant pod; an existing virtual node is the node key's": {
			super:      []object{superNS, node, running},
			tenant:     []object{tenantNS, MakePod("default", "web").Obj(), virtualNode(node, nil, metav1.Unix(0, 0))},
			wantTenant: []string{"create pods/binding default/web"},
		},
		"bound tenant pod gets the super status": {
			super:      []object{superNS, node, running},
			tenant:     []object{tenantNS, MakePod("default", "web").Node("node-1").Obj()},
			wantTenant: []string{"update pods/status default/web"},
		},
		"in sync: nothing to write": {
			super: []object{superNS, node, running},
			tenant: []object{tenantNS, func() *corev1.Pod {
				p := MakePod("default", "web").Node("node-1").Obj()
				p.Status = running.Status
				return p
			}()},
		},
		"readiness gate without its condition: the tenant pod is not Ready, nothing to write": {
			super:  []object{superNS, node, running},
			tenant: []object{tenantNS, gated("")},
		},
		"readiness gate not True: the tenant pod is not Ready, nothing to write": {
			super:  []object{superNS, node, running},
			tenant: []object{tenantNS, gated(corev1.ConditionFalse)},
		},
		"readiness gate set True in the tenant: Ready goes up": {
			super:      []object{superNS, node, running},
			tenant:     []object{tenantNS, gated(corev1.ConditionTrue)},
			wantTenant: []string{"update pods/status default/web"},
		},
		"changed image goes down": {
			super:     []object{superNS, MakePod(testSuperNS, "web").Owned("uid-web").Obj()},
			tenant:    []object{tenantNS, MakePod("default", "web").Image("vnest.local/busybox:2").Obj()},
			wantSuper: []string{"update pods demo-5c9a8459-default/web"},
		},
		"scheduling gate removed in the tenant goes down": {
			super: []object{superNS, func() *corev1.Pod {
				p := MakePod(testSuperNS, "web").Owned("uid-web").Obj()
				p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
				return p
			}()},
			tenant:    []object{tenantNS, MakePod("default", "web").Obj()},
			wantSuper: []string{"update pods demo-5c9a8459-default/web"},
		},
		"terminating tenant pod deletes the super pod": {
			super:     []object{superNS, running},
			tenant:    []object{tenantNS, MakePod("default", "web").Node("node-1").Terminating(5).Obj()},
			wantSuper: []string{"delete pods demo-5c9a8459-default/web"},
		},
		"terminating tenant pod without super pod is finished": {
			super:      []object{superNS},
			tenant:     []object{tenantNS, MakePod("default", "web").Node("node-1").Terminating(5).Obj()},
			wantTenant: []string{"delete pods default/web"},
		},
		"lost super pod: the tenant pod is failed and deleted for its controller to replace": {
			super:      []object{superNS},
			tenant:     []object{tenantNS, MakePod("default", "web").Node("node-1").Phase(corev1.PodRunning).HostIP("10.0.0.1").Obj()},
			wantTenant: []string{"delete pods default/web", "update pods/status default/web"},
		},
		"lost super pod, the tenant pod failed already but not deleted: deleted": {
			super: []object{superNS},
			tenant: []object{tenantNS, func() *corev1.Pod {
				p := MakePod("default", "web").Node("node-1").HostIP("10.0.0.1").Obj()
				p.Status = lostSuperPodStatus(p, metav1.Now())
				return p
			}()},
			wantTenant: []string{"delete pods default/web"},
		},
		"finished tenant pod is not run again": {
			super:  []object{superNS},
			tenant: []object{tenantNS, MakePod("default", "web").Node("node-1").Phase(corev1.PodSucceeded).HostIP("10.0.0.1").Obj()},
		},
		"orphan super pod is deleted": {
			super:     []object{superNS, running},
			tenant:    []object{tenantNS},
			wantSuper: []string{"delete pods demo-5c9a8459-default/web"},
		},
		"super pod of an earlier tenant pod is replaced": {
			super:     []object{superNS, running},
			tenant:    []object{tenantNS, MakePod("default", "web").UID("uid-new").Obj()},
			wantSuper: []string{"delete pods demo-5c9a8459-default/web"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncPod: %v", err)
			}
			if diff := cmp.Diff(tc.wantSuper, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTenant, writes(h.tenantCS)); diff != "" {
				t.Errorf("tenant writes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLostSuperPod: a running tenant pod whose super pod was deleted is marked Failed with a
// DisruptionTarget condition, as the pod garbage collector marks a pod whose node is gone, and
// then deleted: a Job (its pods keep the job-tracking finalizer) sees a failed, disrupted pod.
func TestLostSuperPod(t *testing.T) {
	superNS := &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner)}
	now := metav1.Unix(1000, 0)
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	evicting := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"}
	lost := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, ObservedGeneration: 2, LastTransitionTime: now,
		Reason: "DeletionBySuperCluster", Message: "vnest syncer: the pod's copy in the super cluster was deleted"}
	for name, tc := range map[string]struct {
		conditions, want []corev1.PodCondition
	}{
		"running": {conditions: []corev1.PodCondition{ready}, want: []corev1.PodCondition{ready, lost}},
		"an eviction's mark gives way to the cause": {conditions: []corev1.PodCondition{evicting, ready}, want: []corev1.PodCondition{ready, lost}},
	} {
		t.Run(name, func(t *testing.T) {
			tp := MakePod("default", "web").Node("node-1").Phase(corev1.PodRunning).HostIP("10.0.0.1").Obj()
			tp.Generation, tp.Finalizers, tp.Status.Conditions = 2, []string{"batch.kubernetes.io/job-tracking"}, tc.conditions
			h := newHarness(t, []object{superNS}, []object{tp})
			h.s.now = func() time.Time { return now.Time }
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncPod: %v", err)
			}
			var got []string
			for _, a := range h.tenantCS.Actions() {
				got = append(got, a.GetVerb()+" "+a.GetSubresource())
				if u, ok := a.(k8stesting.UpdateAction); ok {
					st := u.GetObject().(*corev1.Pod).Status
					if st.Phase != corev1.PodFailed || st.ObservedGeneration != 2 {
						t.Errorf("status written: phase %s, observedGeneration %d; want Failed, 2", st.Phase, st.ObservedGeneration)
					}
					if diff := cmp.Diff(tc.want, st.Conditions); diff != "" {
						t.Errorf("conditions written (-want +got):\n%s", diff)
					}
				}
			}
			if diff := cmp.Diff([]string{"update status", "delete "}, got); diff != "" {
				t.Errorf("tenant requests in order (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPodDownEqualAndMerge: of a running pod's spec, images, activeDeadlineSeconds, added
// tolerations and the removal of scheduling gates go down; a scheduled copy's own fields stay.
func TestPodDownEqualAndMerge(t *testing.T) {
	gates := func(names ...string) []corev1.PodSchedulingGate {
		var out []corev1.PodSchedulingGate
		for _, n := range names {
			out = append(out, corev1.PodSchedulingGate{Name: n})
		}
		return out
	}
	spot := corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	notReady := func(seconds int64) corev1.Toleration {
		return corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &seconds}
	}
	cases := map[string]struct {
		tenant    func(*corev1.Pod) // changes the tenant pod after the super pod was made from it
		super     func(*corev1.Pod) // changes the super pod after it was made (the super cluster's admission)
		superGate []corev1.PodSchedulingGate
		wantEqual bool
		want      func(*corev1.PodSpec) // the merged super spec, from the scheduled copy's
	}{
		"a scheduled copy is in sync": {
			tenant:    func(*corev1.Pod) {},
			wantEqual: true,
			want:      func(*corev1.PodSpec) {},
		},
		"a new activeDeadlineSeconds goes down": {
			tenant: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) },
			want:   func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](30) },
		},
		"a scheduling gate the tenant removed goes": {
			tenant:    func(p *corev1.Pod) { p.Spec.SchedulingGates = gates("b") },
			superGate: gates("a", "b", "c"),
			want:      func(s *corev1.PodSpec) { s.SchedulingGates = gates("b") },
		},
		"the last scheduling gate goes": {
			tenant:    func(p *corev1.Pod) { p.Spec.SchedulingGates = nil },
			superGate: gates("a"),
			want:      func(s *corev1.PodSpec) { s.SchedulingGates = nil },
		},
		"a toleration added to a scheduled pod goes down; the super pod's own stay": {
			tenant: func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, spot) },
			super:  func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, notReady(300)) },
			want:   func(s *corev1.PodSpec) { s.Tolerations = append(s.Tolerations, spot) },
		},
		"a toleration the super pod records as refused does not go": {
			tenant: func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, spot) },
			super: func(p *corev1.Pod) {
				*p = *withRecord(p, annotationRefusedTolerations, refusalHash(spot)) // podrefused_test.go
			},
			wantEqual: true,
			want:      func(*corev1.PodSpec) {},
		},
		"a toleration the super pod records as refused, due for retry, goes": {
			tenant: func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, spot) },
			super: func(p *corev1.Pod) {
				*p = *withRecord(p, annotationRefusedTolerations, retryMark+refusalHash(spot)) // podrefused_test.go
			},
			want: func(s *corev1.PodSpec) { s.Tolerations = append(s.Tolerations, spot) },
		},
		"a toleration the super pod has and the tenant's lacks stays": {
			tenant:    func(*corev1.Pod) {},
			super:     func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, notReady(300)) },
			wantEqual: true,
			want:      func(*corev1.PodSpec) {},
		},
		"a tolerationSeconds shortened goes down beside the old one": {
			tenant: func(p *corev1.Pod) { p.Spec.Tolerations = []corev1.Toleration{notReady(60)} },
			super:  func(p *corev1.Pod) { p.Spec.Tolerations = []corev1.Toleration{notReady(300)} },
			want:   func(s *corev1.PodSpec) { s.Tolerations = []corev1.Toleration{notReady(300), notReady(60)} },
		},
		"a gate the super pod lacks is not added (the super apiserver would refuse it)": {
			tenant:    func(p *corev1.Pod) { p.Spec.SchedulingGates = gates("a", "new") },
			superGate: gates("a"),
			wantEqual: true,
			want:      func(*corev1.PodSpec) {},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tenant := MakePod("default", "web").Obj()
			existing := translatePod(tenant, testOwner, v1alpha1.PolicySpec{}, nil)
			existing.Spec.SchedulingGates = tc.superGate
			if len(tc.superGate) == 0 {
				existing.Spec.NodeName = "node-1" // a gated pod is never scheduled
			}
			if tc.super != nil {
				tc.super(existing)
			}
			tc.tenant(tenant)
			desired := translatePod(tenant, testOwner, v1alpha1.PolicySpec{}, nil)
			if got := podDownEqual(desired, existing); got != tc.wantEqual {
				t.Errorf("podDownEqual = %v, want %v", got, tc.wantEqual)
			}
			merged := mergePod(desired, existing)
			want := existing.Spec.DeepCopy()
			tc.want(want)
			if diff := cmp.Diff(*want, merged.Spec); diff != "" {
				t.Errorf("merged spec (-want +got):\n%s", diff)
			}
			if !podDownEqual(desired, merged) {
				t.Error("the merged pod still counts as drift")
			}
			if errs := validatePodUpdate(t, &merged.Spec, &existing.Spec); len(errs) > 0 { // podplacement_test.go
				t.Errorf("upstream refuses the update: %v", errs)
			}
		})
	}
}

// TestBindingConflictIsDone: a tenant pod the cache shows unbound but the tenant apiserver has
// bound already (an earlier sync's binding the cache has not caught up with) is not an error
// to retry: the bound pod's event brings the next round.
func TestBindingConflictIsDone(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	superNS := &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner)}
	running := MakePod(testSuperNS, "web").Owned("uid-web").Node("node-1").Phase(corev1.PodRunning).Obj()
	h := newHarness(t, []object{superNS, node, running}, []object{MakePod("default", "web").Obj(), virtualNode(node, nil, metav1.Unix(0, 0))})
	h.tenantCS.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "binding" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewConflict(corev1.Resource("pods/binding"), "web", errors.New(`pod web is already assigned to node "node-1"`))
	})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Errorf("syncPod: %v, want nil", err)
	}
	h.tenantCS.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return a.GetSubresource() == "binding", nil, apierrors.NewForbidden(corev1.Resource("pods/binding"), "web", errors.New("no"))
	})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err == nil {
		t.Error("syncPod: nil for a refused binding, want the error")
	}
}

// TestStatusConflictIsDone: a status update that meets a newer tenant pod than the cache's (a
// conflict) is not an error to retry: the newer pod's event brings the next round. Another
// refusal still is.
func TestStatusConflictIsDone(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	superNS := &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner)}
	running := MakePod(testSuperNS, "web").Owned("uid-web").Node("node-1").Phase(corev1.PodRunning).HostIP("192.0.2.2").Obj()
	h := newHarness(t, []object{superNS, node, running}, []object{MakePod("default", "web").Node("node-1").Obj(), virtualNode(node, nil, metav1.Unix(0, 0))})
	refuse := func(err error) {
		h.tenantCS.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return a.GetSubresource() == "status", nil, err
		})
	}
	refuse(apierrors.NewConflict(corev1.Resource("pods"), "web", errors.New("the object has been modified")))
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Errorf("syncPod: %v, want nil", err)
	}
	if !slices.Contains(writes(h.tenantCS), "update pods/status default/web") {
		t.Fatalf("tenant writes %v, want a status update", writes(h.tenantCS))
	}
	refuse(apierrors.NewForbidden(corev1.Resource("pods"), "web", errors.New("no")))
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err == nil {
		t.Error("syncPod: nil for a refused status update, want the error")
	}
}
