package apiserver

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// BenchmarkRequestCPU is what one request costs a tenant control plane in CPU: an empty tenant
// as a child process (on an etcd in this process), requests one after the other over one
// connection, and the child's CPU time per request (ms-tenant-CPU/op; wall time is ns/op).
// The requests are those the syncer makes per pod: reading a pod, a TokenRequest bound to a pod
// that is not yet bound to a node and to one that is (its token then names the node), and
// creating an event.
//
//	VNEST_BENCH_BINARY=$PWD/bin/vnest go test ./apiserver -run '^$' -bench RequestCPU -benchtime 500x
//
// The idle tenant's own background CPU (about 3% of a core, BenchmarkIdleControlPlane) is
// included, a few hundredths of a millisecond per request at these rates.
func BenchmarkRequestCPU(b *testing.B) {
	etcd := startEtcd(b)
	state := b.TempDir()
	args := append(tenantArgs(b, etcd, state, "/vnest/tenants/bench-requests"), strings.Fields(os.Getenv(benchArgsEnv))...)
	tn, cmd := startChildTenant(b, benchControlPlaneBinary(), args, state)
	b.Cleanup(tn.stop)
	cfg := *tn.admin
	cfg.QPS, cfg.Burst = 10000, 10000 // no client-side pacing: back to back
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		b.Fatalf("default ServiceAccount: %v", err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for _, name := range []string{"unbound", "bound"} {
		p, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "vnest.local/busybox:1"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		pods[name] = p
	}
	err = cs.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tokenFor := func(pod string) func() error {
		return func() error {
			_, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod, UID: pods[pod].UID},
			}}, metav1.CreateOptions{})
			return err
		}
	}
	requests := []struct {
		name string
		do   func() error
	}{
		{"GET_pod", func() error {
			_, err := cs.CoreV1().Pods("default").Get(ctx, "unbound", metav1.GetOptions{})
			return err
		}},
		{"TokenRequest_unbound_pod", tokenFor("unbound")},
		{"TokenRequest_bound_pod", tokenFor("bound")},
		{"POST_event", func() error {
			_, err := cs.CoreV1().Events("default").Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{GenerateName: "bench-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "unbound"},
				Reason:         "Bench", Message: "a request", Type: corev1.EventTypeNormal,
			}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, r := range requests {
		b.Run(r.name, func(b *testing.B) {
			if err := r.do(); err != nil { // warm: the connection, the first use of the path
				b.Fatal(err)
			}
			before, err := readCPUTime(cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for b.Loop() {
				if err := r.do(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			after, err := readCPUTime(cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(1000*(after-before)/float64(n), "ms-tenant-CPU/op")
			b.Logf("%s: %d requests, tenant CPU %.2f s", r.name, n, after-before)
		})
	}
}
