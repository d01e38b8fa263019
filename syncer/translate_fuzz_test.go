package syncer

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
	podutil "k8s.io/kubernetes/pkg/api/pod"
	"k8s.io/kubernetes/pkg/apis/core"
	k8scorev1 "k8s.io/kubernetes/pkg/apis/core/v1"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Fuzz targets of the translation of tenant objects: a tenant object its apiserver accepts
// must give a super object the super apiserver accepts. Their seeds run as regression tests
// with plain go test; to search: go test ./syncer -run '^$' -fuzz FuzzTranslatePod -parallel 1.

// podInput is what FuzzTranslatePod varies of a tenant pod.
type podInput struct {
	ns, name                   string
	label, annotation          [2]string // a key (none when "") and its value
	annotationPad              uint32    // bytes of one more annotation's value
	envName, fieldPath, volume string
	searches                   string // the pod's own DNS search domains, space-separated
	containers                 uint8
	// nodes is the tenant's virtual Nodes: bits 0-1 how many it tainted NoSchedule, bits 2-3 how
	// many it labelled team=a; bit 4 has the pod select team=a.
	nodes uint8
}

// pod is the tenant pod of in: ClusterFirst DNS with in's search domains, in.containers
// containers (at least one) with in's env variables and volume mounted, the token volume a
// tenant's admission adds, a downward API volume of its labels and namespace, and the
// nodeSelector in.nodes says.
func (in podInput) pod() *corev1.Pod {
	labels, annotations := map[string]string{"app": "web"}, map[string]string{}
	if in.label[0] != "" {
		labels[in.label[0]] = in.label[1]
	}
	if in.annotation[0] != "" {
		annotations[in.annotation[0]] = in.annotation[1]
	}
	if in.annotationPad > 0 {
		annotations["example.com/pad"] = strings.Repeat("x", int(in.annotationPad%(300<<10)))
	}
	var containers []corev1.Container
	for i := range max(1, int(in.containers%40)) {
		containers = append(containers, corev1.Container{
			Name: "c" + strings.Repeat("x", i), Image: "vnest.local/busybox:1",
			Env: []corev1.EnvVar{
				{Name: in.envName, Value: "v"},
				{Name: "FIELD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: in.fieldPath}}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: in.volume, MountPath: "/data"}, {Name: "kube-api-access-x1x2x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
		})
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.ns, Name: in.name, UID: "uid-fuzz", Generation: 1,
			Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			Containers: containers,
			Volumes: []corev1.Volume{
				{Name: in.volume, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
				}}}},
				{Name: "kube-api-access-x1x2x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap}}},
				}}}},
			},
			ServiceAccountName: "default",
		},
	}
	if in.searches != "" {
		p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: strings.Fields(in.searches)}
	}
	if in.nodes&(1<<4) != 0 {
		p.Spec.NodeSelector = map[string]string{"team": "a"}
	}
	return p
}

// virtualNodes is the tenant's virtual Nodes in.nodes says.
func (in podInput) virtualNodes() []object {
	var out []object
	for i := range int(in.nodes & 3) {
		out = append(out, taintedVirtualNode(fmt.Sprintf("tainted-%d", i), "", taint("maintenance", "", corev1.TaintEffectNoSchedule)))
	}
	for i := range int(in.nodes >> 2 & 3) {
		out = append(out, virtualNodeWith(fmt.Sprintf("team-a-%d", i), "", map[string]string{"team": "a"}))
	}
	return out
}

// FuzzTranslatePod: a tenant pod that upstream validation accepts in its tenant namespace gives
// a super pod (the whole down translation: podDown.translate) that it accepts in the super
// namespace, and that carries no reserved key the tenant set.
func FuzzTranslatePod(f *testing.F) {
	searches := func(n, size int) string { // n search domains of size characters
		var out []string
		for i := range n {
			out = append(out, strings.Repeat(string(rune('a'+i%26)), size))
		}
		return strings.Join(out, " ")
	}
	for _, in := range []podInput{
		{ns: "default", name: "web", envName: "HOME", fieldPath: "metadata.namespace", volume: "data", containers: 1},
		// The longest names: a 253-character pod in a 63-character namespace.
		{ns: strings.Repeat("n", 63), name: strings.Repeat("p", 253), envName: "A", fieldPath: "metadata.uid", volume: strings.Repeat("v", 63), containers: 3},
		// Forged ownership, and annotations at the size limit (256 KiB with the keys).
		{ns: "default", name: "web", label: [2]string{"x.tenancy.vnest.dev/tenant-namespace", "kube-system"},
			annotation: [2]string{"tenancy.vnest.dev/tenant-uid", "forged"}, annotationPad: uint32(256<<10 - len("example.com/pad") - len("tenancy.vnest.dev/tenant-uid") - len("forged")),
			envName: "KUBERNETES_SERVICE_HOST", fieldPath: "spec.serviceAccountName", volume: "kube-api-access-x1x2y", containers: 2},
		// The pod's own search domains: 32 of them; 2048 characters (with the spaces) in 8.
		{ns: "default", name: "web", envName: "E", fieldPath: "metadata.name", volume: "d", searches: searches(32, 8), containers: 1},
		{ns: "default", name: "web", envName: "E", fieldPath: "metadata.name", volume: "d", searches: searches(8, 227) + " " + strings.Repeat("z", 2048-8*228), containers: 1},
		// Many containers, env names upstream takes (anything printable but "=").
		{ns: "a", name: "b", envName: "my.var-1 ", fieldPath: "metadata.labels['app']", volume: "tenancy-vnest-dev", containers: 39},
		// Two virtual Nodes the tenant tainted, three it labelled, which the pod selects.
		{ns: "default", name: "web", envName: "E", fieldPath: "metadata.name", volume: "d", containers: 1, nodes: 2 | 3<<2 | 1<<4},
	} {
		f.Add(in.ns, in.name, in.label[0], in.label[1], in.annotation[0], in.annotation[1], in.annotationPad, in.envName, in.fieldPath, in.volume, in.searches, in.containers, in.nodes)
	}
	f.Fuzz(func(t *testing.T, ns, name, labelKey, labelValue, annotationKey, annotationValue string, annotationPad uint32, envName, fieldPath, volume, searches string, containers, nodes uint8) {
		in := podInput{ns: ns, name: name, label: [2]string{labelKey, labelValue}, annotation: [2]string{annotationKey, annotationValue}, annotationPad: annotationPad,
			envName: envName, fieldPath: fieldPath, volume: volume, searches: searches, containers: containers, nodes: nodes}
		tp := in.pod()
		if errs := validatePodCreate(t, tp); len(errs) > 0 {
			return // not a pod a tenant can have
		}
		h := newHarness(t, nil, append(in.virtualNodes(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		h.t.nameserver = "192.0.2.53"
		sp := podDown.translate(h.t, tp.DeepCopy())
		if sp.Namespace != mapping.SuperNamespace(testKey, ns) {
			t.Fatalf("super pod in %q, want %q", sp.Namespace, mapping.SuperNamespace(testKey, ns))
		}
		if errs := withoutStampOverflow(validatePodCreate(t, sp)); len(errs) > 0 {
			t.Fatalf("the super cluster would refuse the super pod of a valid tenant pod: %v", errs.ToAggregate())
		}
		for _, m := range []map[string]string{sp.Labels, sp.Annotations} {
			for k, v := range m {
				if strings.Contains(k, "tenancy.vnest.dev/") && (v == "forged" || v == "kube-system") {
					t.Errorf("the tenant's reserved key %s=%s reached the super pod", k, v)
				}
			}
		}
		if sp.Labels[ownership.LabelTenantNamespace] != ns {
			t.Errorf("super pod's tenant namespace label = %q, want %q", sp.Labels[ownership.LabelTenantNamespace], ns)
		}
	})
}

// TestAnnotationsWithoutRoomForTheStamp: a tenant pod whose annotations fill the 256 KiB its
// apiserver takes leaves no room for the ownership stamp, which the syncer cannot do without: the
// super cluster (a fake one validating as upstream does) refuses the super pod, and the tenant pod
// gets a SuperClusterRejected event that names the annotations' size; the error comes back for a
// retry (the tenant may shorten them).
func TestAnnotationsWithoutRoomForTheStamp(t *testing.T) {
	tp := podInput{ns: "default", name: "web", annotationPad: 256<<10 - uint32(len("example.com/pad")),
		envName: "A", fieldPath: "metadata.name", volume: "data", containers: 1}.pod()
	tp.Spec.Volumes, tp.Spec.Containers[0].VolumeMounts = nil, nil // no token: the pod Secret needs the tenant CA
	if errs := validatePodCreate(t, tp); len(errs) > 0 {
		t.Fatalf("the tenant pod is invalid: %v", errs.ToAggregate())
	}
	h := newHarness(t, []object{superDefaultNS.DeepCopy()}, []object{tenantDefaultNS.DeepCopy(), tp})
	h.super.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if errs := validatePodCreate(t, p); len(errs) > 0 {
			return true, nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Pod").GroupKind(), p.Name, errs)
		}
		return false, nil, nil
	})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); !apierrors.IsInvalid(err) {
		t.Fatalf("syncPod = %v, want the Invalid refusal back", err)
	}
	ev := events(h.recorder)
	if len(ev) != 1 || !strings.Contains(ev[0], "SuperClusterRejected") || !strings.Contains(ev[0], "metadata.annotations: Too long") {
		t.Errorf("events = %q, want one SuperClusterRejected event naming the annotations", ev)
	}
}

// withoutStampOverflow is errs without the error of annotations too large in all: a tenant
// object's annotations near the limit leave no room for the ownership stamp, which the syncer
// cannot do without; the super cluster refuses the object as invalid, which the tenant is told
// with a SuperClusterRejected event naming the annotations (TestAnnotationsWithoutRoomForTheStamp).
func withoutStampOverflow(errs field.ErrorList) field.ErrorList {
	return errs.Filter(func(err error) bool {
		var fe *field.Error
		return errors.As(err, &fe) && fe.Type == field.ErrorTypeTooLong && fe.Field == "metadata.annotations"
	})
}

// validatePodCreate is upstream's validation of the create of pod p, defaulted first as an
// apiserver does, with the options an apiserver derives from the pod.
func validatePodCreate(t *testing.T, p *corev1.Pod) field.ErrorList {
	t.Helper()
	p = p.DeepCopy()
	k8scorev1.SetObjectDefaults_Pod(p)
	var out core.Pod
	if err := k8scorev1.Convert_v1_Pod_To_core_Pod(p, &out, nil); err != nil {
		t.Fatal(err)
	}
	opts := podutil.GetValidationOptionsFromPodSpecAndMeta(&out.Spec, nil, &out.ObjectMeta, nil)
	return corevalidation.ValidatePodCreate(&out, opts)
}
