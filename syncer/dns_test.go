package syncer

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	tenantdns "github.com/vnest-dev/vnest/syncer/dns"
)

func TestPodDNS(t *testing.T) {
	var longSearches, shortSearches []string // 9 of 227 characters; 32 of 1
	for i := range 32 {
		if i < 9 {
			longSearches = append(longSearches, strings.Repeat(string(rune('a'+i)), 227))
		}
		shortSearches = append(shortSearches, string(rune('a'+i%26))+strconv.Itoa(i))
	}
	clusterFirst := &corev1.PodDNSConfig{
		Nameservers: []string{"192.0.2.2"},
		Searches:    []string{"app.svc.cluster.local", "svc.cluster.local", "cluster.local"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
	}
	for _, tc := range []struct {
		name       string
		spec       corev1.PodSpec
		nameserver string
		wantPolicy corev1.DNSPolicy
		want       *corev1.PodDNSConfig
		// wantSubdomain is the subdomain after: "" for the spec's, "-" for none.
		wantSubdomain string
		// wantNameserversOmitted and wantSearchesOmitted are the pod's own nameservers and
		// search domains cut (dnsOmitted).
		wantNameserversOmitted, wantSearchesOmitted []string
	}{
		{name: "default policy: the tenant DNS", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone, want: clusterFirst},
		{name: "ClusterFirst", spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst}, nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone, want: clusterFirst},
		// Its queries come from the node's address, which names no tenant (they were REFUSED).
		{name: "ClusterFirstWithHostNet on the host network: Default, the node's resolver, not the tenant DNS",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet, HostNetwork: true}, nameserver: "192.0.2.2", wantPolicy: corev1.DNSDefault},
		{name: "ClusterFirstWithHostNet off the host network: the tenant DNS", spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet},
			nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone, want: clusterFirst},
		{name: "ClusterFirstWithHostNet on the host network keeps its own dnsConfig", nameserver: "192.0.2.2", wantPolicy: corev1.DNSDefault,
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet, HostNetwork: true, DNSConfig: &corev1.PodDNSConfig{Searches: []string{"corp.example"}}},
			want: &corev1.PodDNSConfig{Searches: []string{"corp.example"}}},
		{name: "DNS server off: ClusterFirstWithHostNet on the host network is kept",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet, HostNetwork: true}, wantPolicy: corev1.DNSClusterFirstWithHostNet},
		{name: "ClusterFirst on the host network is Default, as a kubelet has it",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, HostNetwork: true}, nameserver: "192.0.2.2", wantPolicy: corev1.DNSClusterFirst},
		{name: "Default is kept", spec: corev1.PodSpec{DNSPolicy: corev1.DNSDefault}, nameserver: "192.0.2.2", wantPolicy: corev1.DNSDefault},
		{name: "None is kept", spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}},
			nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone, want: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}},
		{name: "DNS server off: nothing changes", spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst}, wantPolicy: corev1.DNSClusterFirst},
		{name: "the tenant DNS: the subdomain goes (the DNS server answers the pod's own name)", nameserver: "192.0.2.2",
			spec: corev1.PodSpec{Hostname: "h", Subdomain: "sub"}, wantPolicy: corev1.DNSNone, want: clusterFirst, wantSubdomain: "-"},
		{name: "on the host network the subdomain stays (the node's /etc/hosts)", nameserver: "192.0.2.2",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet, HostNetwork: true, Subdomain: "sub"}, wantPolicy: corev1.DNSDefault},
		{name: "Default keeps its subdomain", spec: corev1.PodSpec{DNSPolicy: corev1.DNSDefault, Subdomain: "sub"}, nameserver: "192.0.2.2"},
		{name: "DNS server off: the subdomain stays", spec: corev1.PodSpec{Subdomain: "sub"}},
		{name: "the pod's own dnsConfig is merged as a kubelet merges it", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"192.0.2.2", "1.1.1.1", "8.8.8.8", "9.9.9.9"},
				Searches:    []string{"svc.cluster.local", "corp.example"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
			}},
			want: &corev1.PodDNSConfig{
				Nameservers: []string{"192.0.2.2", "1.1.1.1", "8.8.8.8"},
				Searches:    []string{"app.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
			},
			wantNameserversOmitted: []string{"9.9.9.9"}},
		// The tenant apiserver takes 3 of the pod's own; the tenant's DNS server comes first.
		{name: "the pod's own nameservers past the second are dropped", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}}},
			want: &corev1.PodDNSConfig{
				Nameservers: []string{"192.0.2.2", "1.1.1.1", "8.8.8.8"},
				Searches:    clusterFirst.Searches,
				Options:     clusterFirst.Options,
			},
			wantNameserversOmitted: []string{"9.9.9.9"}},
		{name: "the tenant's DNS server among the pod's own nameservers takes no second place", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "192.0.2.2", "8.8.8.8"}}},
			want: &corev1.PodDNSConfig{
				Nameservers: []string{"192.0.2.2", "1.1.1.1", "8.8.8.8"},
				Searches:    clusterFirst.Searches,
				Options:     clusterFirst.Options,
			}},
		{name: "None: the pod's own nameservers are all kept", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}}},
			want: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}}},
		// 2024 characters of the pod's own, 2078 with the tenant's three before them: upstream
		// takes 2048 (with the spaces), a kubelet drops those past it.
		{name: "the pod's own search domains past 2048 characters in all are dropped", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Searches: append(slices.Clone(longSearches[:8]), longSearches[8][:200])}},
			want: &corev1.PodDNSConfig{
				Nameservers: clusterFirst.Nameservers,
				Searches:    append(slices.Clone(clusterFirst.Searches), longSearches[:8]...),
				Options:     clusterFirst.Options,
			},
			wantSearchesOmitted: []string{longSearches[8][:200]}},
		{name: "the pod's own search domains past 32 in all are dropped", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Searches: shortSearches}},
			want: &corev1.PodDNSConfig{
				Nameservers: clusterFirst.Nameservers,
				Searches:    append(slices.Clone(clusterFirst.Searches), shortSearches[:29]...),
				Options:     clusterFirst.Options,
			},
			wantSearchesOmitted: shortSearches[29:]},
		// The tenant apiserver takes them: a pod of dnsPolicy None goes down as it is.
		{name: "None: the pod's own search domains are all kept", nameserver: "192.0.2.2", wantPolicy: corev1.DNSNone,
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Searches: longSearches[:8]}},
			want: &corev1.PodDNSConfig{Searches: longSearches[:8]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec.DeepCopy()
			if tc.wantPolicy == "" {
				tc.wantPolicy = tc.spec.DNSPolicy
			}
			podDNS(spec, "app", "cluster.local", tc.nameserver)
			if spec.DNSPolicy != tc.wantPolicy {
				t.Errorf("dnsPolicy = %q, want %q", spec.DNSPolicy, tc.wantPolicy)
			}
			if diff := cmp.Diff(tc.want, spec.DNSConfig); diff != "" {
				t.Errorf("dnsConfig (-want +got):\n%s", diff)
			}
			if want := map[string]string{"": tc.spec.Subdomain, "-": ""}[tc.wantSubdomain]; spec.Subdomain != want {
				t.Errorf("subdomain = %q, want %q", spec.Subdomain, want)
			}
			nameservers, searches := dnsOmitted(&corev1.Pod{Spec: tc.spec}, &corev1.Pod{Spec: *spec})
			want := tc.want
			if want == nil {
				want = &corev1.PodDNSConfig{}
			}
			for _, line := range []struct {
				name          string
				got           dnsCut
				omitted, live []string
			}{
				{"nameservers", nameservers, tc.wantNameserversOmitted, want.Nameservers},
				{"searches", searches, tc.wantSearchesOmitted, want.Searches},
			} {
				if diff := cmp.Diff(line.omitted, line.got.omitted); diff != "" {
					t.Errorf("dnsOmitted's %s omitted (-want +got):\n%s", line.name, diff)
				}
				if !slices.Equal(line.got.applied, line.live) {
					t.Errorf("dnsOmitted's applied %s = %q, want %q", line.name, line.got.applied, line.live)
				}
			}
		})
	}
}

// TestDNSOmittedEvents: a tenant pod whose own nameservers or search domains podDNS cut gets
// the Warning event DNSConfigForming a kubelet records for each line it cuts, nameservers first,
// with the applied line, once its super pod is created, and not again at the rounds after; a
// pod whose settings fit gets none.
func TestDNSOmittedEvents(t *testing.T) {
	long := make([]string, 9) // 9 of 227 characters: 2078 with the tenant's three
	for i := range long {
		long[i] = strings.Repeat(string(rune('a'+i)), 227)
	}
	const (
		nameserversCut = "Warning DNSConfigForming Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: "
		searchesCut    = "Warning DNSConfigForming Search Line limits were exceeded, some search paths have been omitted, the applied search line is: "
		tenantSearches = "default.svc.cluster.local svc.cluster.local cluster.local"
	)
	for _, tc := range []struct {
		name string
		dns  corev1.PodDNSConfig
		want []string
	}{
		{name: "search line cut", dns: corev1.PodDNSConfig{Searches: long},
			want: []string{searchesCut + tenantSearches + " " + strings.Join(long[:8], " ")}},
		{name: "nameservers cut", dns: corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}},
			want: []string{nameserversCut + "192.0.2.2 1.1.1.1 8.8.8.8"}},
		{name: "both cut", dns: corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}, Searches: long},
			want: []string{nameserversCut + "192.0.2.2 1.1.1.1 8.8.8.8", searchesCut + tenantSearches + " " + strings.Join(long[:8], " ")}},
		{name: "fits", dns: corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "192.0.2.2", "8.8.8.8"}, Searches: append(long[:7:7], "svc.cluster.local")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := MakePod("default", "web").Obj()
			tp.Spec.DNSConfig = tc.dns.DeepCopy()
			h := newHarness(t, []object{superDefaultNS.DeepCopy()}, []object{tenantDefaultNS.DeepCopy(), tp})
			h.t.nameserver = "192.0.2.2"
			_, w, ev := h.syncRound(t)
			if !slices.Contains(w, "create pods "+testSuperNS+"/web") {
				t.Fatalf("first round's super writes %q; want the super pod created", w)
			}
			if diff := cmp.Diff(tc.want, ev); diff != "" {
				t.Errorf("events of the round that created the super pod (-want +got):\n%s", diff)
			}
			for range 2 {
				if _, _, ev := h.syncRound(t); len(ev) != 0 {
					t.Errorf("events of a later round = %q, want none", ev)
				}
			}
		})
	}
}

func TestPodDownUsesTenantDNS(t *testing.T) {
	h := newHarness(t, nil, nil)
	sp := podDown.translate(h.t, MakePod("app", "p").Obj())
	if sp.Spec.DNSPolicy != "" || sp.Spec.DNSConfig != nil {
		t.Errorf("without a DNS server the super pod got dnsPolicy %q, dnsConfig %+v", sp.Spec.DNSPolicy, sp.Spec.DNSConfig)
	}
	h.t.nameserver = "192.0.2.2"
	h.t.settings.Store(&settings{domain: "tenant.example"})
	sp = podDown.translate(h.t, MakePod("app", "p").Obj())
	if sp.Spec.DNSPolicy != corev1.DNSNone || sp.Spec.DNSConfig == nil || sp.Spec.DNSConfig.Searches[0] != "app.svc.tenant.example" {
		t.Errorf("super pod dnsPolicy %q, dnsConfig %+v; want None, the DNS server and the tenant's search path", sp.Spec.DNSPolicy, sp.Spec.DNSConfig)
	}
}

func TestSettingsDomain(t *testing.T) {
	if got := settingsOf(&v1alpha1.VirtualCluster{}).domain; got != "cluster.local" {
		t.Errorf("domain without spec.clusterDomain = %q, want cluster.local", got)
	}
	vc := &v1alpha1.VirtualCluster{Spec: v1alpha1.VirtualClusterSpec{ClusterDomain: "tenant.example"}}
	if got := settingsOf(vc).domain; got != "tenant.example" {
		t.Errorf("domain = %q, want tenant.example", got)
	}
}

// TestDNSTenant: a query's source IP selects the tenant of the super pod with that IP, and
// names resolve from that tenant's caches with super ClusterIPs; another tenant's pod gets
// nothing of it; addresses of no running tenant pod are nobody's.
func TestDNSTenant(t *testing.T) {
	const otherKey = "other-1a2b3c4d"
	superPod := func(name, ip string, phase corev1.PodPhase) *corev1.Pod {
		p := MakePod(testSuperNS, name).Owned("uid-" + name).Phase(phase).Obj()
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		return p
	}
	otherPod := superPod("o", "10.88.0.9", corev1.PodRunning)
	otherPod.Namespace = otherKey + "-default"
	otherPod.Labels[ownership.LabelClusterKey] = otherKey
	unowned := superPod("stray", "10.88.0.8", corev1.PodRunning)
	delete(unowned.Labels, ownership.LabelTenantNamespace)
	superWeb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web", Labels: map[string]string{
		ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.32.0.10"}}
	db := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}
	dbEps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}, Subsets: []corev1.EndpointSubset{{
		Addresses:         []corev1.EndpointAddress{{IP: "10.88.0.5", Hostname: "db-0"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.88.0.6", Hostname: "db-1"}},
	}}}
	// The tenant's kubernetes Service: its super copy routes port 443 to the tenant apiserver.
	master := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}}
	masterEps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.2"}}, Ports: []corev1.EndpointPort{{Name: "https", Port: 19103}},
	}}}
	superMaster := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "kubernetes", Labels: map[string]string{
		ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.30.144"}}
	// The tenant pod of super pod client has a subdomain that names no Service.
	clientPod := MakePod("default", "client").Obj()
	clientPod.Spec.Subdomain = "nosvc"
	h := newHarness(t, []object{superPod("client", "10.88.0.4", corev1.PodRunning), superPod("done", "10.88.0.7", corev1.PodSucceeded),
		otherPod, unowned, superWeb, superMaster}, []object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, web, db, dbEps, master, masterEps, clientPod})
	// The other tenant is served too, with nothing in it.
	otherVC := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other"}}
	otherVC.Status.ClusterKey = otherKey
	other := newTenant(otherVC, fake.NewClientset())
	other.wireInformers(informers.NewSharedInformerFactory(fake.NewClientset(), 0), h.s)
	h.s.tenants[otherKey] = other

	resolve := func(from, name string) string { return dnsAsk(h.s, from, name, dns.TypeA) }
	ptr := func(from, name string) string { return dnsAsk(h.s, from, name, dns.TypePTR) }
	for _, tc := range []struct{ from, name, want string }{
		{"10.88.0.4", "web.default.svc.cluster.local.", "NOERROR 10.96.0.10"}, // the super ClusterIP, not 10.32.0.10
		{"10.88.0.4", "db.default.svc.cluster.local.", "NOERROR 10.88.0.5"},   // ready addresses only
		{"10.88.0.4", "db-0.db.default.svc.cluster.local.", "NOERROR 10.88.0.5"},
		{"10.88.0.4", "db-1.db.default.svc.cluster.local.", "NXDOMAIN"},
		{"10.88.0.4", "kubernetes.default.svc.cluster.local.", "NOERROR 10.96.30.144"}, // :443 reaches the tenant apiserver
		{"10.88.0.9", "web.default.svc.cluster.local.", "NXDOMAIN"},                    // another tenant's pod
		{"10.88.0.4", "client.nosvc.default.svc.cluster.local.", "NOERROR 10.88.0.4"},  // its own name, as in its /etc/hosts
		{"10.88.0.4", "default.svc.cluster.local.", "NOERROR"},                         // a namespace: no records
		{"10.88.0.4", "nons.svc.cluster.local.", "NXDOMAIN"},                           // no such namespace
		{"10.88.0.9", "default.svc.cluster.local.", "NXDOMAIN"},                        // the other tenant has none
		{"10.88.0.9", "client.nosvc.default.svc.cluster.local.", "NXDOMAIN"},           // not to others
		{"10.88.0.7", "web.default.svc.cluster.local.", "REFUSED"},                     // a finished pod's old address
		{"10.88.0.8", "web.default.svc.cluster.local.", "REFUSED"},                     // a pod without full ownership labels
		{"10.88.0.1", "web.default.svc.cluster.local.", "REFUSED"},                     // no pod
	} {
		if got := resolve(tc.from, tc.name); got != tc.want {
			t.Errorf("%s from %s: %s, want %s", tc.name, tc.from, got, tc.want)
		}
	}
	// Each tenant has its own limit of queries at the upstreams.
	for ip, want := range map[string]string{"10.88.0.4": testKey, "10.88.0.9": otherKey} {
		if tn, ok := h.s.dnsTenant(netip.MustParseAddr(ip)); !ok || tn.Key != want {
			t.Errorf("dnsTenant(%s) = %+v, %v; want key %q", ip, tn, ok, want)
		}
	}
	// Reverse lookups name the tenant Service of a super ClusterIP, never another tenant's.
	if got := ptr("10.88.0.4", "10.0.96.10.in-addr.arpa."); got != "NOERROR web.default.svc.cluster.local." {
		t.Errorf("PTR of web's super ClusterIP: %s", got)
	}
	if got := ptr("10.88.0.9", "10.0.96.10.in-addr.arpa."); got != "FORWARD" {
		t.Errorf("PTR of another tenant's ClusterIP from a pod of the other tenant: %s, want it forwarded", got)
	}
	// ... where the server answers NXDOMAIN for it, as for any super Service's ClusterIP and
	// tenant pod's IP, not the super cluster DNS's name; other addresses go upstream.
	for ip, want := range map[string]bool{"10.96.0.10": true, "10.96.30.144": true, "10.88.0.9": true, "10.88.0.4": true,
		"10.88.0.7": false, "192.0.2.80": false} { // a finished pod's old address; outside the cluster
		if got := h.s.dnsClusterAddress(netip.MustParseAddr(ip)); got != want {
			t.Errorf("dnsClusterAddress(%s) = %v, want %v", ip, got, want)
		}
	}
	// A tenant pod of the name but another UID (the super pod is an old one's): not its name.
	newClient := clientPod.DeepCopy()
	newClient.UID = "uid-client-2"
	if err := h.t.index[kindPod].Update(newClient); err != nil {
		t.Fatal(err)
	}
	if got := resolve("10.88.0.4", "client.nosvc.default.svc.cluster.local."); got != "NXDOMAIN" {
		t.Errorf("own name of a super pod whose tenant pod was replaced: %s, want NXDOMAIN", got)
	}
	// Without the super copy (not synced yet), the tenant apiserver's own address.
	if err := h.s.superIndex[kindService].Delete(superMaster); err != nil {
		t.Fatal(err)
	}
	if got := resolve("10.88.0.4", "kubernetes.default.svc.cluster.local."); got != "NOERROR 192.0.2.2" {
		t.Errorf("kubernetes.default.svc without its super copy: %s, want the tenant apiserver's address", got)
	}
	// An address two tenants' pods claim answers nobody.
	twin := otherPod.DeepCopy()
	twin.Name, twin.Status.PodIP, twin.Status.PodIPs = "twin", "10.88.0.4", []corev1.PodIP{{IP: "10.88.0.4"}}
	h.addTo(t, h.super, h.s.superIndex, twin)
	if got := resolve("10.88.0.4", "web.default.svc.cluster.local."); got != "REFUSED" {
		t.Errorf("from an address of pods of two tenants: %s, want REFUSED", got)
	}
}

// TestDNSTenantReverseEndpoints: through the server and the caches, a reverse lookup of a ready
// endpoint address of the asking tenant's Services answers its name there, as CoreDNS does
// (<hostname>.<svc>.<ns>.svc.D, else the dashed IP): the peers of a StatefulSet behind a
// headless Service. A not-ready address, an address of Endpoints without Service and another
// tenant's endpoint stay NXDOMAIN (tenant pods' addresses), and a ClusterIP names its Service.
func TestDNSTenantReverseEndpoints(t *testing.T) {
	const otherKey = "other-1a2b3c4d"
	superPod := func(name, ip string) *corev1.Pod {
		p := MakePod(testSuperNS, name).Owned("uid-" + name).Phase(corev1.PodRunning).Obj()
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		return p
	}
	otherPod := superPod("payroll-0", "10.88.0.9")
	otherPod.Namespace = otherKey + "-finance"
	otherPod.Labels[ownership.LabelClusterKey] = otherKey
	superWeb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web", Labels: map[string]string{
		ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	service := func(ns, name, clusterIP string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: clusterIP}}
	}
	endpoints := func(ns, name string, ready, notReady []corev1.EndpointAddress) *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Subsets: []corev1.EndpointSubset{{Addresses: ready, NotReadyAddresses: notReady}}}
	}
	h := newHarness(t, []object{superPod("client", "127.0.0.1"), superPod("db-0", "10.88.0.5"), superPod("db-1", "10.88.0.6"),
		superPod("db-2", "10.88.0.7"), superPod("stray", "10.88.0.8"), otherPod, superWeb}, []object{
		service("default", "web", "10.32.0.10"), service("default", "db", corev1.ClusterIPNone),
		endpoints("default", "db", []corev1.EndpointAddress{{IP: "10.88.0.5", Hostname: "db-0"}, {IP: "10.88.0.6"}},
			[]corev1.EndpointAddress{{IP: "10.88.0.7", Hostname: "db-2"}}),
		endpoints("default", "gone", []corev1.EndpointAddress{{IP: "10.88.0.8"}}, nil), // its Service deleted
	})
	// The other tenant names its own pod.
	otherVC := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other"}}
	otherVC.Status.ClusterKey = otherKey
	otherCS := fake.NewClientset()
	other := newTenant(otherVC, otherCS)
	other.wireInformers(informers.NewSharedInformerFactory(otherCS, 0), h.s)
	h.s.tenants[otherKey] = other
	for _, o := range []object{service("finance", "payroll", corev1.ClusterIPNone),
		endpoints("finance", "payroll", []corev1.EndpointAddress{{IP: "10.88.0.9", Hostname: "payroll-0"}}, nil)} {
		h.addTo(t, otherCS, other.index, o)
	}

	srv := tenantdns.New(tenantdns.Config{Tenant: h.s.dnsTenant, ClusterAddress: h.s.dnsClusterAddress, UnknownSourceWait: -1})
	logger, _ := ktesting.NewTestContext(t)
	addr, err := srv.Start(klog.NewContext(t.Context(), logger), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"5.0.88.10.in-addr.arpa.":  "NOERROR db-0.db.default.svc.cluster.local.",      // by its hostname
		"6.0.88.10.in-addr.arpa.":  "NOERROR 10-88-0-6.db.default.svc.cluster.local.", // without one: the dashed IP
		"7.0.88.10.in-addr.arpa.":  "NXDOMAIN",                                        // not ready
		"8.0.88.10.in-addr.arpa.":  "NXDOMAIN",                                        // Endpoints of no Service
		"9.0.88.10.in-addr.arpa.":  "NXDOMAIN",                                        // another tenant's
		"10.0.96.10.in-addr.arpa.": "NOERROR web.default.svc.cluster.local.",          // a ClusterIP, as before
	} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypePTR)
		resp, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, addr.String())
		if err != nil {
			t.Fatalf("PTR %s: %v", name, err)
		}
		got := dns.RcodeToString[resp.Rcode]
		for _, rr := range resp.Answer {
			if p, ok := rr.(*dns.PTR); ok {
				got += " " + p.Ptr
			}
		}
		if got != want {
			t.Errorf("PTR %s from a pod of the tenant: %s, want %s", name, got, want)
		}
	}
	// The other tenant's pods get its own name.
	if got := dnsAsk(h.s, "10.88.0.9", "9.0.88.10.in-addr.arpa.", dns.TypePTR); got != "NOERROR payroll-0.payroll.finance.svc.cluster.local." {
		t.Errorf("PTR of the other tenant's endpoint from its own pod: %s", got)
	}
}

// dnsAsk is a query of type qtype from address from to s's tenant DNS, as the answer's rcode
// and records (A addresses, PTR names), FORWARD when it goes upstream, REFUSED for an unknown
// source.
func dnsAsk(s *Syncer, from, name string, qtype uint16) string {
	tn, ok := s.dnsTenant(netip.MustParseAddr(from))
	if !ok {
		return "REFUSED"
	}
	r := tenantdns.Answer(dns.Question{Name: name, Qtype: qtype}, tn)
	if r.Forward {
		return "FORWARD"
	}
	out := dns.RcodeToString[r.Rcode]
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out += " " + rr.A.String()
		case *dns.PTR:
			out += " " + rr.Ptr
		}
	}
	return out
}

// TestDNSTenantSyncing: a tenant started whose caches have not synced yet (in vcs, not in
// tenants) has its pods' names of its domain answered SERVFAIL, which they retry, not from the
// caches (a Service missing from them would be an NXDOMAIN they cache) nor REFUSED; names
// outside still go upstream. Once it is served, the answers come.
func TestDNSTenantSyncing(t *testing.T) {
	client := MakePod(testSuperNS, "client").Owned("uid-client").Phase(corev1.PodRunning).Obj()
	client.Status.PodIP, client.Status.PodIPs = "10.88.0.4", []corev1.PodIP{{IP: "10.88.0.4"}}
	superWeb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web", Labels: map[string]string{
		ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.32.0.10"}}
	h := newHarness(t, []object{client, superWeb}, []object{web})
	delete(h.s.tenants, testKey) // started (syncVirtualCluster), waiting for its caches
	h.s.vcs["default/demo"] = h.t
	for name, want := range map[string]string{
		"web.default.svc.cluster.local.":  "SERVFAIL",
		"nope.default.svc.cluster.local.": "SERVFAIL",
		"example.com.":                    "FORWARD",
	} {
		if got := dnsAsk(h.s, "10.88.0.4", name, dns.TypeA); got != want {
			t.Errorf("%s from a pod of a tenant whose caches are syncing: %s, want %s", name, got, want)
		}
	}
	h.s.tenants[testKey] = h.t // markServing, once they synced
	if got := dnsAsk(h.s, "10.88.0.4", "web.default.svc.cluster.local.", dns.TypeA); got != "NOERROR 10.96.0.10" {
		t.Errorf("web.default.svc.cluster.local from a pod of a served tenant: %s, want NOERROR 10.96.0.10", got)
	}
}

func TestDNSAdvertiseIP(t *testing.T) {
	for _, tc := range []struct {
		bind, advertise, want string
		wantErr               bool
	}{
		{},
		{bind: "192.0.2.2:53", advertise: "192.0.2.2", want: "192.0.2.2"},
		{bind: ":5353", advertise: "10.96.0.53", want: "10.96.0.53"},
		{advertise: "192.0.2.2", wantErr: true},
		{bind: "192.0.2.2", advertise: "192.0.2.2", wantErr: true},
		{bind: "192.0.2.2:53", wantErr: true},
		{bind: "192.0.2.2:53", advertise: "192.0.2.2:53", wantErr: true},
	} {
		got, err := dnsAdvertiseIP(tc.bind, tc.advertise)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("dnsAdvertiseIP(%q, %q) = %q, %v; want %q, error %v", tc.bind, tc.advertise, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPodHostname(t *testing.T) {
	long := strings.Repeat("a", 61) + "-b" + strings.Repeat("c", 10) // the 63rd character is the b
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"spec.hostname", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: corev1.PodSpec{Hostname: "h"}}, "h"},
		{"the pod's name", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}}, "web-1"},
		{"a long name is cut to 63", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: long}}, long[:63]},
		{"without a dash at the cut", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: long[:62] + "-.x"}}, long[:61]},
	} {
		if got := podHostname(tc.pod); got != tc.want {
			t.Errorf("%s: podHostname = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDNSStart: the DNS server answers an unknown source SERVFAIL (Config.Starting) from the
// syncer's start until the super caches have synced and each VirtualCluster served then has
// been started or is no more to start; a VirtualCluster that cannot be started (here: its
// kubeconfig Secret is missing) keeps it so until dnsStartLimit only. One not served at start
// is not waited for.
func TestDNSStart(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx := testContext(t)
	now := time.Now()
	h.s.now = func() time.Time { return now }
	h.s.vcLister = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	setVC := func(name string, phase v1alpha1.VirtualClusterPhase) {
		vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		vc.Status.Phase, vc.Status.ClusterKey = phase, name+"-key"
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vc)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.s.vcLister.Update(&unstructured.Unstructured{Object: obj}); err != nil {
			t.Fatal(err)
		}
	}
	setVC("demo", v1alpha1.PhaseRunning)
	setVC("off", v1alpha1.PhasePending)
	check := func(step string, want bool) {
		t.Helper()
		if got := h.s.start.starting(h.s.now()); got != want {
			t.Errorf("%s: starting %v, want %v", step, got, want)
		}
	}
	check("before Run", false)

	h.s.start.begin(now.Add(dnsStartLimit))
	check("before the caches synced", true)
	h.s.start.expect(h.s.servedVirtualClusters())
	check("no VirtualCluster started yet", true)
	if err := h.s.syncVirtualCluster(ctx, "default/off"); err != nil {
		t.Fatal(err)
	}
	check("the VirtualCluster not served synced", true)
	if err := h.s.syncVirtualCluster(ctx, "default/demo"); err == nil {
		t.Fatal("syncVirtualCluster default/demo without its kubeconfig Secret: no error")
	}
	check("the served VirtualCluster failed to start", true)
	now = now.Add(dnsStartLimit)
	check("dnsStartLimit later", false)

	h.s.start.begin(now.Add(dnsStartLimit))
	h.s.start.expect(h.s.servedVirtualClusters())
	check("started again", true)
	setVC("demo", v1alpha1.PhaseFailed)
	if err := h.s.syncVirtualCluster(ctx, "default/demo"); err != nil {
		t.Fatal(err)
	}
	check("the served VirtualCluster is no more to start", false)
}
