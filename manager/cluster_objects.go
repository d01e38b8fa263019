package manager

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
)

// DefaultImage is the image of the cluster provisioner's control plane.
const DefaultImage = "vnest.local/vnest:dev"

// DefaultApiserverCommand is the control plane alone (cmd/vnest-apiserver) in DefaultImage
// (images.ControlPlaneCommand): ≈10 MiB less memory per tenant than the vnest binary.
const DefaultApiserverCommand = layout.ControlPlaneImageCommand

const (
	servicePort    = 443
	containerName  = "apiserver"
	pkiMountPath   = "/etc/vnest/pki"
	stateMountPath = "/var/lib/vnest"
	// superClusterDomain is the super cluster's DNS domain, for the
	// Service names in the serving certificate.
	superClusterDomain = "cluster.local"
	// nonRootID runs the control plane as an unprivileged user; the PKI
	// volume is group-readable by it (fsGroup).
	nonRootID = 65532
	// annotationTemplateHash holds a hash of the Deployment spec the
	// manager built, so an unchanged spec is not rewritten on every
	// reconcile (the apiserver's defaulting would make a plain comparison
	// always differ).
	annotationTemplateHash = "tenancy.vnest.dev/spec-hash"
	// annotationPKIHash, on the control plane's pod template, is the pkiHash of its PKI.
	annotationPKIHash = "tenancy.vnest.dev/pki-hash"
)

// selectorLabels select the control-plane pods of vc.
func selectorLabels(vc *v1alpha1.VirtualCluster) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "vnest-apiserver",
		"app.kubernetes.io/instance": vc.Name,
	}
}

func objectMeta(vc *v1alpha1.VirtualCluster, name string) metav1.ObjectMeta {
	labels := labelsFor(vc)
	for k, v := range selectorLabels(vc) {
		labels[k] = v
	}
	return metav1.ObjectMeta{Name: name, Namespace: vc.Namespace, Labels: labels}
}

func exposeType(vc *v1alpha1.VirtualCluster) v1alpha1.ExposeType {
	if cp := vc.Spec.ControlPlane; cp != nil && cp.Expose != nil && cp.Expose.Type != "" {
		return cp.Expose.Type
	}
	return v1alpha1.ExposeClusterIP
}

// buildService is the Service in front of vc's control plane. A NodePort
// the apiserver allocated is the caller's to keep.
func buildService(vc *v1alpha1.VirtualCluster) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: objectMeta(vc, ControlPlaneName(vc))}
	svc.Spec = corev1.ServiceSpec{
		Type:     corev1.ServiceTypeClusterIP,
		Selector: selectorLabels(vc),
		Ports: []corev1.ServicePort{{
			Name: "https", Protocol: corev1.ProtocolTCP, Port: servicePort,
			TargetPort: intstr.FromInt32(layout.DefaultSecurePort),
		}},
	}
	if exposeType(vc) == v1alpha1.ExposeNodePort {
		svc.Spec.Type = corev1.ServiceTypeNodePort
	}
	return svc
}

// serviceEndpoint is where the control plane behind svc is reached: users
// and the manager on the host use the NodePort on the host IP, or the
// ClusterIP (kube-proxy makes it reachable on the super cluster's nodes);
// in-cluster clients use the Service's DNS name. ok is false until the
// apiserver has allocated the address.
func serviceEndpoint(svc *corev1.Service, hostIP net.IP) (ep endpoint, ok bool) {
	dns := svc.Name + "." + svc.Namespace + ".svc"
	ep.InClusterURL = "https://" + net.JoinHostPort(dns, strconv.Itoa(servicePort))
	ep.Names.DNSNames = []string{svc.Name, svc.Name + "." + svc.Namespace, dns, dns + "." + superClusterDomain}
	ip := net.ParseIP(svc.Spec.ClusterIP)
	if ip == nil || len(svc.Spec.Ports) == 0 {
		return ep, false
	}
	ep.Names.IPs = []net.IP{ip}
	ep.URL = "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(servicePort))
	if svc.Spec.Type == corev1.ServiceTypeNodePort {
		nodePort := svc.Spec.Ports[0].NodePort
		if nodePort == 0 {
			return ep, false
		}
		ep.Names.IPs = append(ep.Names.IPs, hostIP)
		ep.URL = "https://" + net.JoinHostPort(hostIP.String(), strconv.Itoa(int(nodePort)))
	}
	return ep, true
}

// podEtcdServers rewrites loopback etcd endpoints to the host IP: the
// manager may reach etcd on 127.0.0.1 (as with `vnest up`), a pod never can.
func podEtcdServers(endpoints []string, hostIP net.IP) []string {
	out := make([]string, len(endpoints))
	for i, e := range endpoints {
		out[i] = e
		u, err := url.Parse(e)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			u.Host = net.JoinHostPort(hostIP.String(), u.Port())
			out[i] = u.String()
		}
	}
	return out
}

// defaultResources apply when spec.controlPlane.resources is empty: enough
// for the scheduler to place a small tenant, no limit to throttle it.
var defaultResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("192Mi"),
	},
}

// goMemoryLimit is the Go soft memory limit for a control-plane container with resources r:
// 90% of its memory limit, so that the GC works harder near the limit instead of the kernel
// killing the tenant (a busy tenant runs at a looser GC target, see apiserver's gcTuner); ""
// without a memory limit.
func goMemoryLimit(r corev1.ResourceRequirements) string {
	limit, ok := r.Limits[corev1.ResourceMemory]
	if !ok || limit.Value() <= 0 {
		return ""
	}
	return strconv.FormatInt(limit.Value()/10*9, 10)
}

// commandOf is a container's command: command, or none (the image's entrypoint) for "".
func commandOf(command string) []string {
	if command == "" {
		return nil
	}
	return []string{command}
}

// buildDeployment is the control plane of t in the super cluster: one
// `vnest apiserver` pod (run as `command apiserver ...`, or with the image's
// entrypoint when command is "") with the PKI Secret as its read-only PKI
// directory.
func buildDeployment(t tenant, image, command string, hostIP net.IP) *appsv1.Deployment {
	vc := t.VC
	resources := controlPlaneResources(vc, defaultResources)
	args := apiserverArgs(t, podEtcdServers(t.EtcdServers, hostIP), stateMountPath, pkiMountPath,
		"0.0.0.0", layout.DefaultSecurePort, t.Endpoint.InClusterURL)
	args = append(args, "--advertise-address=$(POD_IP)")
	args = append(args, limitArgs(resources)...)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			// /readyz and /livez are open to anonymous requests in
			// kube-apiserver (system:public-info-viewer).
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(layout.DefaultSecurePort), Scheme: corev1.URISchemeHTTPS,
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 5,
		}
	}
	pod := corev1.PodSpec{
		AutomountServiceAccountToken: ptr.To(false), // the tenant control plane needs nothing from the super cluster
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](nonRootID), RunAsGroup: ptr.To[int64](nonRootID),
			FSGroup: ptr.To[int64](nonRootID), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name: containerName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: commandOf(command),
			Args:    args,
			Env: []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"},
			}}},
			Ports:          []corev1.ContainerPort{{Name: "https", ContainerPort: layout.DefaultSecurePort, Protocol: corev1.ProtocolTCP}},
			Resources:      resources,
			StartupProbe:   probe("/livez", 2, 90),
			ReadinessProbe: probe("/readyz", 5, 3),
			LivenessProbe:  probe("/livez", 10, 6),
			VolumeMounts: []corev1.VolumeMount{
				{Name: "pki", MountPath: pkiMountPath, ReadOnly: true},
				{Name: "state", MountPath: stateMountPath},
			},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "pki", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: t.PKISecret, DefaultMode: ptr.To[int32](0o440),
			}}},
			{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	d := &appsv1.Deployment{ObjectMeta: objectMeta(vc, ControlPlaneName(vc))}
	d.Spec = appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1),
		Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(vc)},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{
			Labels: objectMeta(vc, "").Labels,
			// A new PKI (a renewed certificate) rolls the pod: the control plane reads it at start.
			Annotations: map[string]string{annotationPKIHash: pkiHash(t.PKI)},
		}, Spec: pod},
	}
	d.Annotations = map[string]string{annotationTemplateHash: specHash(d.Spec)}
	return d
}

// specHash identifies a Deployment spec as built (before defaulting).
func specHash(spec appsv1.DeploymentSpec) string {
	b, err := json.Marshal(spec)
	if err != nil {
		panic(fmt.Sprintf("marshalling a Deployment spec: %v", err)) // plain structs cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
