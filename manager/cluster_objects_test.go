package manager

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/images"
	"github.com/vnest-dev/vnest/internal/ownership"
)

var testHostIP = net.ParseIP("192.0.2.2")

func TestBuildService(t *testing.T) {
	cases := map[string]struct {
		vc       *v1alpha1.VirtualCluster
		wantType corev1.ServiceType
	}{
		"default is ClusterIP": {makeVC("demo").Key("demo-1").Provisioner(v1alpha1.ProvisionerCluster).Obj(), corev1.ServiceTypeClusterIP},
		"NodePort":             {makeVC("demo").Key("demo-1").Provisioner(v1alpha1.ProvisionerCluster).Expose(v1alpha1.ExposeNodePort).Obj(), corev1.ServiceTypeNodePort},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			svc := buildService(tc.vc)
			if svc.Name != "demo-apiserver" || svc.Namespace != "default" {
				t.Errorf("name = %s/%s", svc.Namespace, svc.Name)
			}
			if svc.Spec.Type != tc.wantType {
				t.Errorf("type = %s, want %s", svc.Spec.Type, tc.wantType)
			}
			want := []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(6443)}}
			if diff := cmp.Diff(want, svc.Spec.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"app.kubernetes.io/name": "vnest-apiserver", "app.kubernetes.io/instance": "demo"}, svc.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if svc.Labels[ownership.LabelControlPlane] != "demo-1" || svc.Labels[ownership.LabelClusterKey] != "" || svc.Labels[ownership.LabelManagedBy] != ownership.ManagedByManager {
				t.Errorf("labels %v lack ownership", svc.Labels)
			}
		})
	}
}

func TestServiceEndpoint(t *testing.T) {
	svc := func(typ corev1.ServiceType, clusterIP string, nodePort int32) *corev1.Service {
		s := buildService(makeVC("demo").Obj())
		s.Spec.Type, s.Spec.ClusterIP, s.Spec.Ports[0].NodePort = typ, clusterIP, nodePort
		return s
	}
	dnsNames := []string{"demo-apiserver", "demo-apiserver.default", "demo-apiserver.default.svc", "demo-apiserver.default.svc.cluster.local"}
	cases := map[string]struct {
		svc     *corev1.Service
		wantOK  bool
		wantURL string
		wantIPs []string
	}{
		"ClusterIP":                  {svc(corev1.ServiceTypeClusterIP, "10.96.0.20", 0), true, "https://10.96.0.20:443", []string{"10.96.0.20"}},
		"NodePort on the host":       {svc(corev1.ServiceTypeNodePort, "10.96.0.20", 31443), true, "https://192.0.2.2:31443", []string{"10.96.0.20", "192.0.2.2"}},
		"no ClusterIP yet":           {svc(corev1.ServiceTypeClusterIP, "", 0), false, "", nil},
		"NodePort not allocated yet": {svc(corev1.ServiceTypeNodePort, "10.96.0.20", 0), false, "https://10.96.0.20:443", []string{"10.96.0.20"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ep, ok := serviceEndpoint(tc.svc, testHostIP)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			var ips []string
			for _, ip := range ep.Names.IPs {
				ips = append(ips, ip.String())
			}
			if diff := cmp.Diff(tc.wantIPs, ips); diff != "" {
				t.Errorf("IPs (-want +got):\n%s", diff)
			}
			if ep.URL != tc.wantURL || ep.InClusterURL != "https://demo-apiserver.default.svc:443" {
				t.Errorf("URL %s, in-cluster %s", ep.URL, ep.InClusterURL)
			}
			if diff := cmp.Diff(dnsNames, ep.Names.DNSNames); diff != "" {
				t.Errorf("DNS names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodEtcdServers(t *testing.T) {
	in := []string{"https://127.0.0.1:2379", "https://localhost:2379", "http://[::1]:2379", "https://etcd.example:2379", "https://10.0.0.5:2379"}
	want := []string{"https://192.0.2.2:2379", "https://192.0.2.2:2379", "http://192.0.2.2:2379", "https://etcd.example:2379", "https://10.0.0.5:2379"}
	if diff := cmp.Diff(want, podEtcdServers(in, testHostIP)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func testTenant(vc *v1alpha1.VirtualCluster) tenant {
	return tenant{
		VC: vc, EtcdServers: []string{"https://127.0.0.1:2379"}, PKISecret: vc.PKISecretName(),
		PKI:      map[string][]byte{EtcdCAFile: []byte("x"), EtcdClientCertFile: []byte("x"), EtcdClientKeyFile: []byte("x")},
		Endpoint: endpoint{URL: "https://10.96.0.20:443", InClusterURL: "https://demo-apiserver.default.svc:443"},
	}
}

func TestBuildDeployment(t *testing.T) {
	vc := makeVC("demo").Key("demo-1").Provisioner(v1alpha1.ProvisionerCluster).Obj()
	d := buildDeployment(testTenant(vc), DefaultImage, DefaultApiserverCommand, testHostIP)

	if d.Name != "demo-apiserver" || *d.Spec.Replicas != 1 {
		t.Errorf("name %s replicas %d", d.Name, *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != "vnest.local/vnest:dev" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s pull %s", c.Image, c.ImagePullPolicy)
	}
	wantArgs := []string{
		"apiserver",
		"--state-dir=/var/lib/vnest",
		"--pki-dir=/etc/vnest/pki",
		"--etcd-servers=https://192.0.2.2:2379",
		"--etcd-prefix=/vnest/tenants/demo-1",
		"--bind-address=0.0.0.0",
		"--secure-port=6443",
		"--cluster-domain=cluster.local",
		"--kubeconfig-server=https://demo-apiserver.default.svc:443",
		"--etcd-cafile=/etc/vnest/pki/etcd-ca.crt",
		"--etcd-certfile=/etc/vnest/pki/etcd-client.crt",
		"--etcd-keyfile=/etc/vnest/pki/etcd-client.key",
		"--advertise-address=$(POD_IP)",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	// The control plane alone, where the vnest image holds it.
	if diff := cmp.Diff([]string{images.ControlPlaneCommand}, c.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if entry := buildDeployment(testTenant(vc), DefaultImage, "", testHostIP).Spec.Template.Spec.Containers[0]; entry.Command != nil || !slices.Equal(entry.Args, c.Args) {
		t.Errorf("without a command: command %q args %q, want the image's entrypoint with the same args", entry.Command, entry.Args)
	}
	if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("readiness probe %+v, want HTTPS /readyz", c.ReadinessProbe)
	}
	if diff := cmp.Diff(defaultResources, c.Resources); diff != "" {
		t.Errorf("default resources (-want +got):\n%s", diff)
	}
	if pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "demo-pki" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("PKI volume %+v mount %+v, want Secret demo-pki read-only", pod.Volumes[0], c.VolumeMounts[0])
	}
	if *pod.AutomountServiceAccountToken || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the control-plane pod must not mount a super-cluster token and must run as non-root")
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("template labels lack selector %s=%s", k, v)
		}
	}

	// Same input, same hash; a spec change changes it.
	if again := buildDeployment(testTenant(vc), DefaultImage, DefaultApiserverCommand, testHostIP); again.Annotations[annotationTemplateHash] != d.Annotations[annotationTemplateHash] {
		t.Error("the spec hash is not stable")
	}
	vc.Spec.ControlPlane.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	changed := buildDeployment(testTenant(vc), DefaultImage, DefaultApiserverCommand, testHostIP)
	if changed.Annotations[annotationTemplateHash] == d.Annotations[annotationTemplateHash] {
		t.Error("a resources change did not change the spec hash")
	}
	if got := changed.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); got != "1Gi" {
		t.Errorf("memory limit = %s, want spec.controlPlane.resources' 1Gi", got)
	}
	if args := changed.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--memory-limit=966367638") {
		t.Errorf("args %q lack the Go memory limit at 90%% of the container's", args)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--memory-limit") }) {
		t.Errorf("args %q set a Go memory limit without a container memory limit", args)
	}

	// A renewed certificate rolls the pod: the control plane reads its PKI at start.
	renewed := testTenant(vc)
	renewed.PKI[EtcdClientCertFile] = []byte("renewed")
	if rolled := buildDeployment(renewed, DefaultImage, DefaultApiserverCommand, testHostIP); rolled.Annotations[annotationTemplateHash] == changed.Annotations[annotationTemplateHash] {
		t.Error("a PKI change did not change the spec hash: the running pod would keep the old certificates")
	}
}

// TestPKIHash: the hash follows every file's name and content, not the map's order.
func TestPKIHash(t *testing.T) {
	base := map[string][]byte{"ca.crt": []byte("A"), "admin.crt": []byte("B")}
	for name, tc := range map[string]struct {
		pki  map[string][]byte
		same bool
	}{
		"same files":          {map[string][]byte{"admin.crt": []byte("B"), "ca.crt": []byte("A")}, true},
		"a renewed file":      {map[string][]byte{"ca.crt": []byte("A"), "admin.crt": []byte("C")}, false},
		"a file more":         {map[string][]byte{"ca.crt": []byte("A"), "admin.crt": []byte("B"), "sa.key": nil}, false},
		"content moved names": {map[string][]byte{"ca.crt": []byte("AB"), "admin.crt": nil}, false},
	} {
		if got := pkiHash(tc.pki) == pkiHash(base); got != tc.same {
			t.Errorf("%s: same hash = %v, want %v", name, got, tc.same)
		}
	}
}

func TestGoMemoryLimit(t *testing.T) {
	for name, tc := range map[string]struct {
		limits corev1.ResourceList
		want   string
	}{
		"no limits":           {nil, ""},
		"cpu limit only":      {corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}, ""},
		"1Gi":                 {corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}, "966367638"},
		"decimal 500M":        {corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("500M")}, "450000000"},
		"zero is not a limit": {corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("0")}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			if got := goMemoryLimit(corev1.ResourceRequirements{Limits: tc.limits}); got != tc.want {
				t.Errorf("goMemoryLimit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRollingOut(t *testing.T) {
	d := func(gen, observed int64, replicas, updated, ready int32) *appsv1.Deployment {
		x := &appsv1.Deployment{}
		x.Generation = gen
		x.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated, ReadyReplicas: ready}
		return x
	}
	for name, tc := range map[string]struct {
		d    *appsv1.Deployment
		want bool
	}{
		"new":             {d(1, 0, 0, 0, 0), true},
		"ready":           {d(1, 1, 1, 1, 1), false},
		"new spec":        {d(2, 1, 1, 1, 1), true},
		"old pod serving": {d(2, 2, 2, 1, 1), true},
		"pod not ready":   {d(1, 1, 1, 1, 0), true},
	} {
		if got := rollingOut(tc.d); got != tc.want {
			t.Errorf("%s: rollingOut = %v, want %v", name, got, tc.want)
		}
	}
}

func TestDescribePod(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name = "demo-apiserver-x"
	pod.Status.Phase = corev1.PodPending
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:  "apiserver",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image not present"}},
	}}
	got := describePod(pod)
	if !strings.Contains(got, "pod demo-apiserver-x is Pending, container apiserver waiting: ErrImageNeverPull image not present") {
		t.Errorf("describePod = %q", got)
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/1 nodes are available"}}
	if got := describePod(pod); !strings.HasSuffix(got, "not scheduled: 0/1 nodes are available") {
		t.Errorf("describePod = %q", got)
	}
}
