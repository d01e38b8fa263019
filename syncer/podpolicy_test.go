package syncer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

func TestPodSecurityViolation(t *testing.T) {
	privileged := MakePod("ns", "p").Obj()
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	hostPath := MakePod("ns", "p").Obj()
	hostPath.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	hostNet := MakePod("ns", "p").Obj()
	hostNet.Spec.HostNetwork, hostNet.Spec.HostPID = true, true
	restrictedOK := MakePod("ns", "p").Obj()
	restrictedOK.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	restrictedOK.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	cases := map[string]struct {
		pod   *corev1.Pod
		level v1alpha1.PodSecurityLevel
		want  []string // substrings of the refusal; none: allowed
	}{
		"plain pod, default level (baseline)":   {pod: MakePod("ns", "p").Obj()},
		"privileged container, default level":   {pod: privileged, want: []string{`"baseline:latest"`, "privileged", `container "main"`}},
		"hostPath volume, baseline":             {pod: hostPath, level: v1alpha1.PodSecurityBaseline, want: []string{"hostPath volumes", `"root"`}},
		"hostNetwork and hostPID, baseline":     {pod: hostNet, level: v1alpha1.PodSecurityBaseline, want: []string{"hostNetwork=true", "hostPID=true"}},
		"privileged container, privileged":      {pod: privileged, level: v1alpha1.PodSecurityPrivileged},
		"hostPath volume, privileged":           {pod: hostPath, level: v1alpha1.PodSecurityPrivileged},
		"plain pod, restricted":                 {pod: MakePod("ns", "p").Obj(), level: v1alpha1.PodSecurityRestricted, want: []string{`"restricted:latest"`, "runAsNonRoot"}},
		"restricted-conforming pod, restricted": {pod: restrictedOK, level: v1alpha1.PodSecurityRestricted},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := podSecurityViolation(tc.pod, tc.level)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("refused: %s", got)
			}
			if len(tc.want) > 0 && got == "" {
				t.Fatal("allowed, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("refusal %q does not mention %q", got, w)
				}
			}
		})
	}
}

func TestQuotaViolation(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return out
	}
	cases := map[string]struct {
		hard, used, add corev1.ResourceList
		want            string // substring; "" means it fits
	}{
		"fits":                   {hard: rl("pods", "2"), used: rl("pods", "1"), add: rl("pods", "1")},
		"one pod too many":       {hard: rl("pods", "2"), used: rl("pods", "2"), add: rl("pods", "1"), want: "pods: requested 1, used 2, limited 2"},
		"unlimited resource":     {hard: rl("pods", "5"), used: rl("pods", "1", "requests.cpu", "100"), add: rl("pods", "1", "requests.cpu", "1")},
		"cpu over":               {hard: rl("requests.cpu", "1"), used: rl("requests.cpu", "800m"), add: rl("requests.cpu", "300m"), want: "requests.cpu: requested 300m, used 800m, limited 1"},
		"nothing used yet":       {hard: rl("requests.memory", "1Gi"), add: rl("requests.memory", "512Mi")},
		"a pod with no requests": {hard: rl("requests.memory", "1Gi"), used: rl("requests.memory", "1Gi"), add: rl("pods", "1")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := quotaViolation(tc.hard, tc.used, tc.add)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("quotaViolation = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPinToNode(t *testing.T) {
	onNode := corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	ssd := corev1.NodeSelectorRequirement{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"ssd"}}
	cases := map[string]struct {
		in, want corev1.PodSpec
	}{
		"no nodeName: unchanged": {},
		"nodeName becomes an affinity": {
			in: corev1.PodSpec{NodeName: "n1"},
			want: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{onNode}}}},
			}}},
		},
		"every ORed term gets the node": {
			in: corev1.PodSpec{NodeName: "n1", Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}, {MatchExpressions: []corev1.NodeSelectorRequirement{ssd}},
				}},
			}}},
			want: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{zone}, MatchFields: []corev1.NodeSelectorRequirement{onNode}},
					{MatchExpressions: []corev1.NodeSelectorRequirement{ssd}, MatchFields: []corev1.NodeSelectorRequirement{onNode}},
				}},
			}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.in
			pinToNode(&got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if p := podNode(&corev1.Pod{Spec: got}); p != tc.in.NodeName {
				t.Errorf("podNode of the pinned pod = %q, want %q", p, tc.in.NodeName)
			}
		})
	}
}

// TestPinnedNode: only a node that every required term names by metadata.name is the pod's.
func TestPinnedNode(t *testing.T) {
	named := func(op corev1.NodeSelectorOperator, nodes ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: op, Values: nodes}
	}
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	spec := func(terms ...[]corev1.NodeSelectorRequirement) *corev1.PodSpec {
		sel := &corev1.NodeSelector{}
		for _, fields := range terms {
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}, MatchFields: fields})
		}
		return &corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: sel}}}
	}
	in := corev1.NodeSelectorOpIn
	for name, tc := range map[string]struct {
		spec *corev1.PodSpec
		want string
	}{
		"no affinity":                    {&corev1.PodSpec{}, ""},
		"one term names the node":        {spec([]corev1.NodeSelectorRequirement{named(in, "n1")}), "n1"},
		"every term names the same node": {spec([]corev1.NodeSelectorRequirement{named(in, "n1")}, []corev1.NodeSelectorRequirement{named(in, "n1")}), "n1"},
		"terms name different nodes":     {spec([]corev1.NodeSelectorRequirement{named(in, "n1")}, []corev1.NodeSelectorRequirement{named(in, "n2")}), ""},
		"a term names none":              {spec([]corev1.NodeSelectorRequirement{named(in, "n1")}, nil), ""},
		"a choice of nodes":              {spec([]corev1.NodeSelectorRequirement{named(in, "n1", "n2")}), ""},
		"NotIn":                          {spec([]corev1.NodeSelectorRequirement{named(corev1.NodeSelectorOpNotIn, "n1")}), ""},
	} {
		if got := pinnedNode(tc.spec); got != tc.want {
			t.Errorf("%s: pinnedNode = %q, want %q", name, got, tc.want)
		}
	}
}

// TestPolicyGatesPodDown: a pod the virtual cluster's policy refuses is not created in the
// super cluster; the tenant pod says why (condition and event). With a pod quota, pods admitted
// in a row count even before the super cache shows them (without the ledger the second pod of
// the last case would be created too).
func TestPolicyGatesPodDown(t *testing.T) {
	ns := superDefaultNS.DeepCopy()
	privileged := MakePod("default", "web").Obj()
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	pods := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}
	cases := map[string]struct {
		policy     v1alpha1.PolicySpec
		super      []object
		tenant     []object
		sync       []string
		wantWrites []string
		wantReason string // of the tenant pod "web"'s PodScheduled=False condition
	}{
		"privileged pod in a baseline tenant": {
			tenant: []object{privileged}, sync: []string{"web"},
			wantReason: v1alpha1.PodReasonSecurityViolation,
		},
		"privileged pod in a privileged tenant": {
			policy: v1alpha1.PolicySpec{PodSecurityLevel: v1alpha1.PodSecurityPrivileged},
			tenant: []object{privileged}, sync: []string{"web"},
			wantWrites: []string{"create pods " + testSuperNS + "/web"},
		},
		"quota used up by a running pod": {
			policy: v1alpha1.PolicySpec{Quota: pods},
			super:  []object{MakePod(testSuperNS, "old").Owned("uid-old").Phase(corev1.PodRunning).Obj()},
			tenant: []object{MakePod("default", "web").Obj()}, sync: []string{"web"},
			wantReason: v1alpha1.PodReasonQuotaExceeded,
		},
		"a finished pod does not count": {
			policy:     v1alpha1.PolicySpec{Quota: pods},
			super:      []object{MakePod(testSuperNS, "old").Owned("uid-old").Phase(corev1.PodSucceeded).Obj()},
			tenant:     []object{MakePod("default", "web").Obj()},
			sync:       []string{"web"},
			wantWrites: []string{"create pods " + testSuperNS + "/web"},
		},
		"two pods in a row, quota of one": {
			policy:     v1alpha1.PolicySpec{Quota: pods},
			tenant:     []object{MakePod("default", "a").Obj(), MakePod("default", "web").Obj()},
			sync:       []string{"a", "web"},
			wantWrites: []string{"create pods " + testSuperNS + "/a"},
			wantReason: v1alpha1.PodReasonQuotaExceeded,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, append([]object{ns}, tc.super...), tc.tenant)
			h.t.settings.Store(&settings{policy: tc.policy})
			for _, p := range tc.sync {
				if err := h.s.syncPod(testContext(t), h.t, "default", p); err != nil {
					t.Fatalf("syncPod %s: %v", p, err)
				}
			}
			var created []string
			for _, w := range writes(h.super) {
				if strings.HasPrefix(w, "create pods") {
					created = append(created, w)
				}
			}
			if diff := cmp.Diff(tc.wantWrites, created); diff != "" {
				t.Errorf("super pod creates (-want +got):\n%s", diff)
			}
			web, err := h.tenantCS.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var reason, msg string
			for _, c := range web.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
					reason, msg = c.Reason, c.Message
				}
			}
			if reason != tc.wantReason {
				t.Fatalf("PodScheduled=False reason %q (%s), want %q", reason, msg, tc.wantReason)
			}
			ev := events(h.recorder)
			if tc.wantReason == "" {
				return
			}
			if len(ev) != 1 || !strings.Contains(ev[0], tc.wantReason) {
				t.Errorf("events = %q, want one %s event", ev, tc.wantReason)
			}
			// Looking again changes nothing and repeats no event.
			h.t.index[kindPod].Update(web)
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if ev := events(h.recorder); len(ev) > 0 {
				t.Errorf("second look recorded %q", ev)
			}
		})
	}
}

// TestPlacePod: a pod the tenant put on a node itself goes there directly when the policy allows
// it there, and otherwise waits for the super scheduler with a node affinity on that node.
func TestPlacePod(t *testing.T) {
	node := func(mod func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"pool": "tenants"}}}
		if mod != nil {
			mod(n)
		}
		return n
	}
	taint := func(effect corev1.TaintEffect) func(*corev1.Node) {
		return func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: effect}}
		}
	}
	tolerate := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "infra"}}
	cases := map[string]struct {
		spec   corev1.PodSpec
		node   *corev1.Node
		direct bool
	}{
		"no such super node":               {spec: corev1.PodSpec{NodeName: "n1"}},
		"another node":                     {spec: corev1.PodSpec{NodeName: "n2"}, node: node(nil)},
		"node allows it":                   {spec: corev1.PodSpec{NodeName: "n1"}, node: node(nil), direct: true},
		"cordoned":                         {spec: corev1.PodSpec{NodeName: "n1"}, node: node(func(n *corev1.Node) { n.Spec.Unschedulable = true })},
		"selector matches":                 {spec: corev1.PodSpec{NodeName: "n1", NodeSelector: map[string]string{"pool": "tenants"}}, node: node(nil), direct: true},
		"selector does not match":          {spec: corev1.PodSpec{NodeName: "n1", NodeSelector: map[string]string{"pool": "batch"}}, node: node(nil)},
		"NoSchedule taint not tolerated":   {spec: corev1.PodSpec{NodeName: "n1"}, node: node(taint(corev1.TaintEffectNoSchedule))},
		"NoExecute taint not tolerated":    {spec: corev1.PodSpec{NodeName: "n1"}, node: node(taint(corev1.TaintEffectNoExecute))},
		"NoSchedule taint tolerated":       {spec: corev1.PodSpec{NodeName: "n1", Tolerations: tolerate}, node: node(taint(corev1.TaintEffectNoSchedule)), direct: true},
		"PreferNoSchedule taint":           {spec: corev1.PodSpec{NodeName: "n1"}, node: node(taint(corev1.TaintEffectPreferNoSchedule)), direct: true},
		"required affinity does not match": {spec: corev1.PodSpec{NodeName: "n1", Affinity: affinityOn("zone", "a")}, node: node(nil)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := *tc.spec.DeepCopy()
			placePod(&got, tc.node)
			if tc.direct {
				if diff := cmp.Diff(tc.spec, got); diff != "" {
					t.Errorf("want the pod sent to its node as it is (-want +got):\n%s", diff)
				}
				return
			}
			want := *tc.spec.DeepCopy()
			pinToNode(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("want the node as an affinity (-want +got):\n%s", diff)
			}
		})
	}
	none := corev1.PodSpec{}
	if placePod(&none, node(nil)); !cmp.Equal(none, corev1.PodSpec{}) {
		t.Errorf("a pod without nodeName changed: %+v", none)
	}
}

func affinityOn(key, value string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{value}}}}},
	}}}
}

// TestPodOnItsNode: a tenant pod with spec.nodeName goes down with that nodeName when the super
// node exists and the policy allows it (the policy's node selector merged in), and with a node
// affinity when the policy's selector rules the node out.
func TestPodOnItsNode(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nodeLabels map[string]string
		wantNode   string
	}{
		{"policy allows the node", map[string]string{"pool": "tenants"}, "node-1"},
		{"policy rules it out", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := MakePod("default", "web").Node("node-1").Obj()
			superNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: tc.nodeLabels}}
			h := newHarness(t, []object{superNode}, []object{pod})
			h.t.settings.Store(&settings{policy: v1alpha1.PolicySpec{NodeSelector: map[string]string{"pool": "tenants"}}})
			sp := h.syncWebDown(t)
			if sp.Spec.NodeName != tc.wantNode || (tc.wantNode == "") != (sp.Spec.Affinity != nil) {
				t.Errorf("super pod nodeName %q, affinity %v; want nodeName %q and an affinity only without it", sp.Spec.NodeName, sp.Spec.Affinity, tc.wantNode)
			}
		})
	}
}
