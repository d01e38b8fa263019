package apiserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/auth/rbac/reconciliation"
	"k8s.io/klog/v2"
	schedulingv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	rbacrest "k8s.io/kubernetes/pkg/registry/rbac/rest"
	schedulingrest "k8s.io/kubernetes/pkg/registry/scheduling/rest"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
)

// rbacSeedAgent is the field manager of the objects the seeder creates.
const rbacSeedAgent = "vnest-bootstrap"

// rbacSeedWorkers is how many reconciles the seeder runs at a time.
const rbacSeedWorkers = 8

// bootstrapRetry bounds the retries of one bootstrap object, as upstream's hooks do (30 s).
var bootstrapRetry = wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Steps: 10, Cap: 5 * time.Second}

// replacedHooks are the kube-apiserver post-start hooks seedBootstrapPolicy does instead. Both
// wait one second before their first try and then write one object after the other, which
// made them the longest wait of a new tenant's start-up (1.3-2 s of the apiserver's 2.5-3.5 s).
var replacedHooks = []string{rbacrest.PostStartHookName, schedulingrest.PostStartHookName}

// seedBootstrapPolicy does what kube-apiserver's rbac/bootstrap-roles and
// scheduling/bootstrap-system-priority-classes post-start hooks do — reconcile the upstream
// bootstrap RBAC policy (the same objects, the same reconciliation) and create the system
// PriorityClasses — as soon as the apiserver serves, several objects at a time. Run disables
// those hooks and waits for this before the tenant counts as ready; an error means an object
// could not be written within its retries.
//
// Left out from the RBAC hook: its migrations of roles and bindings from Kubernetes 1.8 and
// older names (a tenant never had those).
func (c CompletedConfig) seedBootstrapPolicy(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	cfg := c.adminConfig()
	cfg.UserAgent, cfg.QPS = rbacSeedAgent, -1
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// Serving yet? Until then every request fails to connect.
	for {
		if _, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	start := time.Now()
	tasks := append(bootstrapRBACTasks(client), systemPriorityClassTasks(client)...)
	work := make(chan func() error)
	errs := make(chan error, len(tasks))
	var wg sync.WaitGroup
	for range rbacSeedWorkers {
		wg.Go(func() {
			for task := range work {
				errs <- retry.OnError(bootstrapRetry, func(error) bool { return ctx.Err() == nil }, task)
			}
		})
	}
	for _, task := range tasks {
		work <- task
	}
	close(work)
	wg.Wait()
	close(errs)
	var failed []error
	for err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("bootstrap policy: %d of %d objects failed: %w", len(failed), len(tasks), utilerrors.NewAggregate(failed))
	}
	logger.V(1).Info("Reconciled the bootstrap policy", "objects", len(tasks), "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// systemPriorityClassTasks create the system PriorityClasses when missing, as upstream's hook.
func systemPriorityClassTasks(client kubernetes.Interface) []func() error {
	var tasks []func() error
	for _, pc := range schedulingv1.SystemPriorityClasses() {
		tasks = append(tasks, func() error {
			_, err := client.SchedulingV1().PriorityClasses().Get(context.TODO(), pc.Name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return err
			}
			_, err = client.SchedulingV1().PriorityClasses().Create(context.TODO(), pc, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
	}
	return tasks
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
