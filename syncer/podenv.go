package syncer

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/kubernetes/pkg/kubelet/envvars"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// What a pod sees of itself and its cluster, made the tenant's.
//
// Environment: the super kubelet would inject the SUPER cluster's service variables; every super
// pod has enableServiceLinks false and, as explicit variables in front of each container's own
// (which still win, and may refer to them), the variables a kubelet of the tenant would set:
// KUBERNETES_SERVICE_HOST/PORT and friends for the tenant apiserver (the address and port of
// the tenant's default/kubernetes Endpoints, which every pod can reach and the tenant's serving
// certificate names), and, unless the tenant pod disabled service links, FOO_SERVICE_HOST etc.
// for the tenant Services of the pod's namespace that exist when the pod goes down, with the
// ClusterIPs of their super Services (the addresses the super cluster routes).
//
// Downward API: in env, metadata.namespace, metadata.uid and spec.serviceAccountName become the
// tenant pod's values; in downwardAPI volumes (where only fields can be referenced)
// metadata.namespace and metadata.uid read the super pod's ownership label and annotation that
// hold them; metadata.labels and metadata.annotations as a whole come from the pod's Secret
// (podmeta.go), without vnest's keys. metadata.name, spec.nodeName, status.podIP and the host
// fields need nothing.

// masterService is the tenant apiserver as a kubelet's master service: default/kubernetes at the
// address and port of its Endpoints. ok is false when the Endpoints have no address yet.
func masterService(ep *corev1.Endpoints) (svc *corev1.Service, ok bool) {
	if ep == nil {
		return nil, false
	}
	for _, ss := range ep.Subsets {
		if len(ss.Addresses) == 0 || len(ss.Ports) == 0 {
			continue
		}
		port := ss.Ports[0]
		for _, p := range ss.Ports {
			if p.Name == "https" {
				port = p
			}
		}
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "kubernetes"},
			Spec: corev1.ServiceSpec{ClusterIP: ss.Addresses[0].IP, Ports: []corev1.ServicePort{
				{Name: "https", Port: port.Port, Protocol: corev1.ProtocolTCP},
			}},
		}, true
	}
	return nil, false
}

// serviceEnv is the service environment of a pod in tenant namespace ns, as a kubelet builds it
// (envvars.FromServices): the master service always, and with links the namespace's Services
// whose super ClusterIP superIP returns (those without one are left out), sorted by name.
func serviceEnv(ns string, services []*corev1.Service, superIP func(*corev1.Service) string, master *corev1.Service, links bool) []corev1.EnvVar {
	byName := map[string]*corev1.Service{}
	if master != nil {
		byName[master.Name] = master
	}
	if links {
		for _, svc := range services {
			if svc.Namespace != ns || isTenantAPIService(svc.Namespace, svc.Name) {
				continue
			}
			ip := superIP(svc)
			if ip == "" || ip == corev1.ClusterIPNone {
				continue
			}
			c := svc.DeepCopy()
			c.Spec.ClusterIP = ip
			byName[c.Name] = c
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range byName {
			if !yield(n) {
				return
			}
		}
	})
	list := make([]*corev1.Service, 0, len(names))
	for _, n := range names {
		list = append(list, byName[n])
	}
	return envvars.FromServices(list)
}

// withEnv puts env in front of the environment of every (init) container of pod.
func withEnv(pod *corev1.Pod, env []corev1.EnvVar) *corev1.Pod {
	if len(env) == 0 {
		return pod
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			cs[i].Env = slices.Concat(env, cs[i].Env)
		}
	}
	return pod
}

// tenantDownwardAPI rewrites the downward API references of spec (a copy of tenant pod p's) so
// that they give p's tenant values in the super cluster.
func tenantDownwardAPI(spec *corev1.PodSpec, p *corev1.Pod) {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			tenantEnvFields(cs[i].Env, p)
		}
	}
	fix := func(items []corev1.DownwardAPIVolumeFile) {
		for i, it := range items {
			if it.FieldRef == nil {
				continue
			}
			switch it.FieldRef.FieldPath {
			case "metadata.namespace":
				items[i].FieldRef = &corev1.ObjectFieldSelector{APIVersion: it.FieldRef.APIVersion, FieldPath: "metadata.labels['" + ownership.LabelTenantNamespace + "']"}
			case "metadata.uid":
				items[i].FieldRef = &corev1.ObjectFieldSelector{APIVersion: it.FieldRef.APIVersion, FieldPath: "metadata.annotations['" + ownership.AnnotationTenantUID + "']"}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.DownwardAPI != nil {
			fix(v.DownwardAPI.Items)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.DownwardAPI != nil {
					fix(src.DownwardAPI.Items)
				}
			}
		}
	}
	wholeMapFromSecret(spec, p) // podmeta.go
}

// tenantEnvFields rewrites, in place, the env variables of a container of tenant pod p that
// read metadata.namespace, metadata.uid or spec.serviceAccountName into p's values.
func tenantEnvFields(env []corev1.EnvVar, p *corev1.Pod) {
	for j, e := range env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			continue
		}
		var v string
		switch e.ValueFrom.FieldRef.FieldPath {
		case "metadata.namespace":
			v = p.Namespace
		case "metadata.uid":
			v = string(p.UID)
		case "spec.serviceAccountName":
			v = p.Spec.ServiceAccountName
		default:
			continue
		}
		env[j] = corev1.EnvVar{Name: e.Name, Value: v}
	}
}

// tenantEnv is the service environment for tenant pod p of tenant t, from the caches.
func (t *tenant) tenantEnv(p *corev1.Pod) []corev1.EnvVar {
	ep, _ := t.endpoints.Endpoints(metav1.NamespaceDefault).Get("kubernetes")
	master, _ := masterService(ep)
	links := p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks
	var services []*corev1.Service
	if links {
		services, _ = t.services.Services(p.Namespace).List(labels.Everything())
	}
	superIP := func(svc *corev1.Service) string { return t.superClusterIP(p.Namespace, svc.Name) }
	return serviceEnv(p.Namespace, services, superIP, master, links)
}
