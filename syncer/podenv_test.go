package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/internal/ownership"
)

func TestMasterService(t *testing.T) {
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.2"}},
		Ports:     []corev1.EndpointPort{{Name: "https", Port: 16543}},
	}}}
	svc, ok := masterService(ep)
	if !ok || svc.Spec.ClusterIP != "192.0.2.2" || svc.Spec.Ports[0].Port != 16543 || svc.Name != "kubernetes" {
		t.Errorf("masterService = %+v, %v", svc, ok)
	}
	if _, ok := masterService(&corev1.Endpoints{}); ok {
		t.Error("a master service from Endpoints without addresses")
	}
	if _, ok := masterService(nil); ok {
		t.Error("a master service from no Endpoints")
	}
}

func TestServiceEnv(t *testing.T) {
	master, _ := masterService(&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.2"}}, Ports: []corev1.EndpointPort{{Name: "https", Port: 6443}},
	}}})
	svc := func(ns, name, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
			ClusterIP: ip, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		}}
	}
	services := []*corev1.Service{
		svc("app", "web", "10.32.0.10"), svc("app", "headless", "None"), svc("app", "unsynced", "10.32.0.12"),
		svc("default", "kubernetes", "10.32.0.1"), svc("other", "db", "10.32.0.13"),
	}
	superIPs := map[string]string{"web": "10.96.5.5", "headless": "None", "kubernetes": "10.96.0.1", "db": "10.96.7.7"}
	superIP := func(s *corev1.Service) string { return superIPs[s.Name] }
	names := func(env []corev1.EnvVar) map[string]string {
		out := map[string]string{}
		for _, e := range env {
			out[e.Name] = e.Value
		}
		return out
	}

	env := names(serviceEnv("app", services, superIP, master, true))
	for k, v := range map[string]string{
		"KUBERNETES_SERVICE_HOST": "192.0.2.2", "KUBERNETES_SERVICE_PORT": "6443", "KUBERNETES_PORT": "tcp://192.0.2.2:6443",
		"WEB_SERVICE_HOST": "10.96.5.5", "WEB_SERVICE_PORT": "80",
	} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"HEADLESS_SERVICE_HOST", "UNSYNCED_SERVICE_HOST", "DB_SERVICE_HOST"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s is set: headless, unsynced and other namespaces' Services have no variables", k)
		}
	}

	// In default the tenant's own kubernetes Service is the master: its super IP is not used.
	if env := names(serviceEnv("default", services, superIP, master, true)); env["KUBERNETES_SERVICE_HOST"] != "192.0.2.2" {
		t.Errorf("in default KUBERNETES_SERVICE_HOST = %q", env["KUBERNETES_SERVICE_HOST"])
	}
	// Without service links only the master.
	env = names(serviceEnv("app", services, superIP, master, false))
	if _, ok := env["WEB_SERVICE_HOST"]; ok || env["KUBERNETES_SERVICE_HOST"] != "192.0.2.2" {
		t.Errorf("without links: %v", env)
	}
	// Deterministic.
	if a, b := serviceEnv("app", services, superIP, master, true), serviceEnv("app", services, superIP, master, true); !cmp.Equal(a, b) {
		t.Error("two calls differ")
	}
}

func TestWithEnv(t *testing.T) {
	p := MakePod("ns", "p").Obj()
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "mine"}}
	p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	withEnv(p, []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "tenant"}})
	want := []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "tenant"}, {Name: "KUBERNETES_SERVICE_HOST", Value: "mine"}}
	if diff := cmp.Diff(want, p.Spec.Containers[0].Env); diff != "" {
		t.Errorf("container env: the service variables go first so the container's own win (-want +got):\n%s", diff)
	}
	if len(p.Spec.InitContainers[0].Env) != 1 {
		t.Errorf("init container env %v", p.Spec.InitContainers[0].Env)
	}
}

func TestTenantDownwardAPI(t *testing.T) {
	p := MakePod("app", "web").Obj()
	p.Spec.ServiceAccountName = "builder"
	ref := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
	}
	p.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "NS", ValueFrom: ref("metadata.namespace")}, {Name: "UID", ValueFrom: ref("metadata.uid")},
		{Name: "SA", ValueFrom: ref("spec.serviceAccountName")}, {Name: "NAME", ValueFrom: ref("metadata.name")},
		{Name: "IP", ValueFrom: ref("status.podIP")}, {Name: "NODE", ValueFrom: ref("spec.nodeName")},
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
		{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}},
		{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.uid"}},
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
	}}}}}
	spec := p.Spec.DeepCopy()
	tenantDownwardAPI(spec, p)
	wantEnv := []corev1.EnvVar{
		{Name: "NS", Value: "app"}, {Name: "UID", Value: "uid-web"}, {Name: "SA", Value: "builder"},
		{Name: "NAME", ValueFrom: ref("metadata.name")}, {Name: "IP", ValueFrom: ref("status.podIP")}, {Name: "NODE", ValueFrom: ref("spec.nodeName")},
	}
	if diff := cmp.Diff(wantEnv, spec.Containers[0].Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	field := func(path string) *corev1.ObjectFieldSelector {
		return &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}
	}
	// The labels file comes from the pod Secret (podmeta.go): the volume becomes projected.
	wantVolume := corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "ns", FieldRef: field("metadata.labels['" + ownership.LabelTenantNamespace + "']")},
			{Path: "uid", FieldRef: field("metadata.annotations['" + ownership.AnnotationTenantUID + "']")},
		}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"},
			Items: []corev1.KeyToPath{{Key: "metadata.labels", Path: "labels"}}}},
	}}}
	if diff := cmp.Diff(wantVolume, spec.Volumes[0].VolumeSource); diff != "" {
		t.Errorf("volume (-want +got):\n%s", diff)
	}
	if p.Spec.Containers[0].Env[0].ValueFrom == nil {
		t.Error("the tenant pod was modified")
	}
}

func TestWholeMapDownwardAPI(t *testing.T) {
	mode := int32(0o400)
	item := func(path, field string) corev1.DownwardAPIVolumeFile {
		return corev1.DownwardAPIVolumeFile{Path: path, FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: field}}
	}
	withMode := item("annotations", "metadata.annotations")
	withMode.Mode = &mode
	p := MakePod("app", "web").Obj()
	p.Labels = map[string]string{"app": "web", "tier": `a "b"`}
	p.Annotations = map[string]string{"note": "x"}
	p.Spec.Volumes = []corev1.Volume{
		{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{withMode}}},
		}}}},
		{Name: "name", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			item("name", "metadata.name"),
		}}}},
	}
	wantData := map[string][]byte{"metadata.annotations": []byte(`note="x"`)}
	if diff := cmp.Diff(wantData, podMetaData(p)); diff != "" {
		t.Errorf("podMetaData (-want +got):\n%s", diff)
	}
	p.Spec.Volumes[1].DownwardAPI.Items = append(p.Spec.Volumes[1].DownwardAPI.Items, item("labels", "metadata.labels"))
	wantData["metadata.labels"] = []byte("app=\"web\"\ntier=\"a \\\"b\\\"\"")
	if diff := cmp.Diff(wantData, podMetaData(p)); diff != "" {
		t.Errorf("podMetaData (-want +got):\n%s", diff)
	}
	if !sameMeta(podMetaData(p), wantData) || sameMeta(map[string][]byte{"metadata.labels": wantData["metadata.labels"]}, wantData) {
		t.Error("sameMeta does not compare both files")
	}

	spec := p.Spec.DeepCopy()
	wholeMapFromSecret(spec, p)
	wantAll := []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"},
			Items: []corev1.KeyToPath{{Key: "metadata.annotations", Path: "annotations", Mode: &mode}}}},
	}
	if diff := cmp.Diff(wantAll, spec.Volumes[0].Projected.Sources); diff != "" {
		t.Errorf("projected volume (-want +got):\n%s", diff)
	}
	wantName := []corev1.VolumeProjection{
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{item("name", "metadata.name")}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"},
			Items: []corev1.KeyToPath{{Key: "metadata.labels", Path: "labels"}}}},
	}
	if spec.Volumes[1].Projected == nil || spec.Volumes[1].DownwardAPI != nil {
		t.Fatalf("downwardAPI volume with labels: %+v, want a projected volume", spec.Volumes[1].VolumeSource)
	}
	if diff := cmp.Diff(wantName, spec.Volumes[1].Projected.Sources); diff != "" {
		t.Errorf("downwardAPI volume (-want +got):\n%s", diff)
	}
	if p.Spec.Volumes[0].Projected.Sources[1].DownwardAPI == nil || p.Spec.Volumes[1].DownwardAPI == nil {
		t.Error("the tenant pod was modified")
	}
}
