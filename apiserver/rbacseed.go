package apiserver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-helpers/auth/rbac/reconciliation"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
)

// rbacSeedAgent is the field manager of the objects the seeder creates.
const rbacSeedAgent = "vnest-rbac-seed"

// rbacSeedWorkers is how many reconciles the seeder runs at a time.
const rbacSeedWorkers = 8

// seedBootstrapRBAC reconciles the upstream bootstrap RBAC policy (the
// same objects and the same reconciliation as kube-apiserver's
// rbac/bootstrap-roles post-start hook) as soon as the apiserver serves,
// several at a time, until done or ctx ends.
//
// Why: the upstream hook waits one second before its first try and then
// reconciles ~150 objects one after the other; on a new tenant that was
// the longest wait of start-up (1 s and more on a busy machine). Seeded
// in parallel during that second, the hook finds every object as it wants
// it and only reads them. Nothing depends on the seeder: whatever it did
// not get to (an error, a stop), the hook still does, as upstream.
func (c CompletedConfig) seedBootstrapRBAC(ctx context.Context) {
	logger := klog.FromContext(ctx)
	cfg := &rest.Config{
		Host: c.loopbackServer(),
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: c.pki.CA.CertFile, CertFile: c.pki.Admin.CertFile, KeyFile: c.pki.Admin.KeyFile,
		},
		UserAgent: rbacSeedAgent,
		Timeout:   5 * time.Second,
		QPS:       -1,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		logger.V(1).Info("Not seeding the bootstrap RBAC policy", "err", err)
		return
	}
	// Serving yet? Until then every request fails to connect.
	for {
		if _, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	start := time.Now()
	tasks := bootstrapRBACTasks(client)
	work := make(chan func() error)
	var failed atomic.Int32
	var wg sync.WaitGroup
	for range rbacSeedWorkers {
		wg.Go(func() {
			for task := range work {
				if task() != nil {
					failed.Add(1)
				}
			}
		})
	}
feed:
	for _, task := range tasks {
		select {
		case work <- task:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	logger.V(1).Info("Seeded the bootstrap RBAC policy", "objects", len(tasks), "failed", failed.Load(), "after", time.Since(start).Round(time.Millisecond))
}

// bootstrapRBACTasks are the reconciles of the upstream hook's PolicyData
// (pkg/registry/rbac/rest.RESTStorageProvider.PostStartHook), one per object.
func bootstrapRBACTasks(client kubernetes.Interface) []func() error {
	var tasks []func() error
	for _, r := range append(bootstrappolicy.ClusterRoles(), bootstrappolicy.ControllerRoles()...) {
		tasks = append(tasks, func() error {
			_, err := (&reconciliation.ReconcileRoleOptions{
				Role:    reconciliation.ClusterRoleRuleOwner{ClusterRole: &r},
				Client:  reconciliation.ClusterRoleModifier{Client: client.RbacV1().ClusterRoles()},
				Confirm: true,
			}).Run()
			return err
		})
	}
	for _, b := range append(bootstrappolicy.ClusterRoleBindings(), bootstrappolicy.ControllerRoleBindings()...) {
		tasks = append(tasks, func() error {
			_, err := (&reconciliation.ReconcileRoleBindingOptions{
				RoleBinding: reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: &b},
				Client:      reconciliation.ClusterRoleBindingClientAdapter{Client: client.RbacV1().ClusterRoleBindings()},
				Confirm:     true,
			}).Run()
			return err
		})
	}
	for _, roles := range bootstrappolicy.NamespaceRoles() {
		for _, r := range roles {
			tasks = append(tasks, func() error {
				_, err := (&reconciliation.ReconcileRoleOptions{
					Role:    reconciliation.RoleRuleOwner{Role: &r},
					Client:  reconciliation.RoleModifier{Client: client.RbacV1(), NamespaceClient: client.CoreV1().Namespaces()},
					Confirm: true,
				}).Run()
				return err
			})
		}
	}
	for _, bindings := range bootstrappolicy.NamespaceRoleBindings() {
		for _, b := range bindings {
			tasks = append(tasks, func() error {
				_, err := (&reconciliation.ReconcileRoleBindingOptions{
					RoleBinding: reconciliation.RoleBindingAdapter{RoleBinding: &b},
					Client:      reconciliation.RoleBindingClientAdapter{Client: client.RbacV1(), NamespaceClient: client.CoreV1().Namespaces()},
					Confirm:     true,
				}).Run()
				return err
			})
		}
	}
	return tasks
}
