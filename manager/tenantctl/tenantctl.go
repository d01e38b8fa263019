package tenantctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/pki"
	"github.com/vnest-dev/vnest/manager"
)

// pollInterval is how often --wait looks at the VirtualCluster.
const pollInterval = 500 * time.Millisecond

// CreateOptions are the settings of `vnest create`.
type CreateOptions struct {
	Name, Namespace string
	Provisioner     string // "" = the CRD's default (local)
	Wait            bool
	Timeout         time.Duration
}

// Create creates a VirtualCluster and, with Wait, waits until it runs. A
// VirtualCluster that fails (a condition that needs a fix) ends the wait
// early with the condition's message.
func Create(ctx context.Context, c client.Client, o CreateOptions, out io.Writer) error {
	switch v1alpha1.Provisioner(o.Provisioner) {
	case "", v1alpha1.ProvisionerLocal, v1alpha1.ProvisionerCluster:
	default:
		return fmt.Errorf("invalid --provisioner %q: must be %s or %s", o.Provisioner, v1alpha1.ProvisionerLocal, v1alpha1.ProvisionerCluster)
	}
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace}}
	if o.Provisioner != "" {
		vc.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Provisioner: v1alpha1.Provisioner(o.Provisioner)}
	}
	if err := c.Create(ctx, vc); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("virtual cluster %s/%s already exists", o.Namespace, o.Name)
		}
		return fmt.Errorf("creating virtual cluster %s/%s: %w", o.Namespace, o.Name, err)
	}
	fmt.Fprintf(out, "virtualcluster %s/%s created\n", o.Namespace, o.Name)
	if !o.Wait {
		return nil
	}
	vc, err := waitFor(ctx, c, o.Namespace, o.Name, o.Timeout, func(vc *v1alpha1.VirtualCluster) (bool, error) {
		switch vc.Status.Phase {
		case v1alpha1.PhaseRunning:
			return true, nil
		case v1alpha1.PhaseFailed:
			return false, notReady(vc, "failed")
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "virtualcluster %s/%s is Running at %s; get its kubeconfig with: vnest kubeconfig %s -n %s\n",
		o.Namespace, o.Name, vc.Status.Endpoint, o.Name, o.Namespace)
	return nil
}

// DeleteOptions are the settings of `vnest delete`.
type DeleteOptions struct {
	Name, Namespace string
	Wait            bool
	Timeout         time.Duration
}

// Delete deletes a VirtualCluster and, with Wait, waits until the manager
// has cleaned up and the object is gone: the object it deleted, known by
// its UID, so one created again under the name meanwhile does not keep it
// waiting.
func Delete(ctx context.Context, c client.Client, o DeleteOptions, out io.Writer) error {
	vc, err := get(ctx, c, o.Namespace, o.Name)
	if err != nil {
		return err
	}
	uid := vc.UID
	// The UID precondition: what is deleted is what is waited for.
	if err := c.Delete(ctx, vc, client.Preconditions{UID: &uid}); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return notFound(o.Namespace, o.Name)
		case apierrors.IsConflict(err):
			return fmt.Errorf("virtual cluster %s/%s was replaced by a new one while it was being deleted (UID %s): run vnest delete again to delete the new one: %w",
				o.Namespace, o.Name, uid, err)
		}
		return fmt.Errorf("deleting virtual cluster %s/%s: %w", o.Namespace, o.Name, err)
	}
	if !o.Wait {
		fmt.Fprintf(out, "virtualcluster %s/%s deletion requested\n", o.Namespace, o.Name)
		return nil
	}
	vc, err = waitFor(ctx, c, o.Namespace, o.Name, o.Timeout, func(vc *v1alpha1.VirtualCluster) (bool, error) { return vc.UID != uid, nil })
	var nf *notFoundError
	switch {
	case errors.As(err, &nf):
		fmt.Fprintf(out, "virtualcluster %s/%s deleted\n", o.Namespace, o.Name)
		return nil
	case err != nil:
		return err
	}
	fmt.Fprintf(out, "virtualcluster %s/%s deleted (a new one of that name exists now)\n", o.Namespace, o.Name)
	return nil
}

// ListOptions are the settings of `vnest list`.
type ListOptions struct {
	Namespace     string
	AllNamespaces bool
}

// List prints the VirtualClusters as a table: NAME PHASE PROVISIONER
// ENDPOINT AGE, with NAMESPACE first for all namespaces.
func List(ctx context.Context, c client.Client, o ListOptions, out, errOut io.Writer, now time.Time) error {
	var list v1alpha1.VirtualClusterList
	var opts []client.ListOption
	if !o.AllNamespaces {
		opts = append(opts, client.InNamespace(o.Namespace))
	}
	if err := c.List(ctx, &list, opts...); err != nil {
		if meta.IsNoMatchError(err) {
			return errors.New("the super cluster has no VirtualCluster API: install the CRD (manifests/crd) and run the manager")
		}
		return fmt.Errorf("listing virtual clusters: %w", err)
	}
	if len(list.Items) == 0 {
		if o.AllNamespaces {
			fmt.Fprintln(errOut, "No virtual clusters found.")
		} else {
			fmt.Fprintf(errOut, "No virtual clusters found in namespace %s.\n", o.Namespace)
		}
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	if o.AllNamespaces {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tPHASE\tPROVISIONER\tENDPOINT\tAGE")
	for i := range list.Items {
		vc := &list.Items[i]
		if o.AllNamespaces {
			fmt.Fprintf(w, "%s\t", vc.Namespace)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", vc.Name, orNone(string(vc.Status.Phase)), provisionerOf(vc),
			orNone(vc.Status.Endpoint), duration.HumanDuration(now.Sub(vc.CreationTimestamp.Time)))
	}
	return w.Flush()
}

// KubeconfigOptions are the settings of `vnest kubeconfig`.
type KubeconfigOptions struct {
	Name, Namespace string
	// Output is a file to write; "" prints to out.
	Output string
}

// Kubeconfig prints or writes the tenant admin kubeconfig.
func Kubeconfig(ctx context.Context, c client.Client, o KubeconfigOptions, out io.Writer) error {
	vc, err := get(ctx, c, o.Namespace, o.Name)
	if err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionKubeconfigReady) {
		return notReady(vc, "not ready yet")
	}
	name := vc.Status.KubeconfigSecretName
	if name == "" {
		name = vc.KubeconfigSecretName()
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: name}, secret); err != nil {
		return fmt.Errorf("reading the kubeconfig Secret %s/%s of virtual cluster %s: %w", o.Namespace, name, o.Name, err)
	}
	data := secret.Data[manager.KubeconfigKey]
	if len(data) == 0 {
		return fmt.Errorf("the kubeconfig Secret %s/%s has no %q key", o.Namespace, name, manager.KubeconfigKey)
	}
	if o.Output == "" {
		_, err := out.Write(data)
		return err
	}
	// Replaced, not rewritten in place: a write that fails (a full disk) or a crash must not cost
	// the old kubeconfig, nor a reader see half of one. A file there already, readable by all as
	// often as not, gets mode 0600 with the admin credentials.
	if err := pki.WriteFile(o.Output, data, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	fmt.Fprintf(out, "kubeconfig of virtualcluster %s/%s written to %s\n", o.Namespace, o.Name, o.Output)
	return nil
}

type notFoundError struct{ namespace, name string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("virtual cluster %s/%s not found (vnest list -n %s shows the ones there are)", e.namespace, e.name, e.namespace)
}

func notFound(namespace, name string) error { return &notFoundError{namespace, name} }

func get(ctx context.Context, c client.Client, namespace, name string) (*v1alpha1.VirtualCluster, error) {
	vc := &v1alpha1.VirtualCluster{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, vc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notFound(namespace, name)
		}
		return nil, fmt.Errorf("reading virtual cluster %s/%s: %w", namespace, name, err)
	}
	return vc, nil
}

// notReady explains a VirtualCluster that is not (yet) usable with the
// condition that says why.
func notReady(vc *v1alpha1.VirtualCluster, state string) error {
	phase := string(vc.Status.Phase)
	if phase == "" {
		phase = "not reconciled yet: is the vnest manager running?"
	}
	msg := fmt.Sprintf("virtual cluster %s/%s is %s (phase %s)", vc.Namespace, vc.Name, state, phase)
	for _, t := range []string{v1alpha1.ConditionControlPlaneReady, v1alpha1.ConditionKubeconfigReady} {
		if c := meta.FindStatusCondition(vc.Status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%s: %s=%s %s: %s", msg, c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return errors.New(msg)
}

// firstLookTimeout bounds the first look of a wait whose timeout is
// shorter (--timeout 0 looks once): it must not hang on an apiserver that
// does not answer.
const firstLookTimeout = 10 * time.Second

// waitFor polls the VirtualCluster until done says so, returns an error,
// the object is gone (a *notFoundError), timeout passes or ctx is done (the
// error then carries the last condition, and says which of the two). It
// looks once before the timeout counts, so with timeout 0 it looks once,
// as kubectl wait --timeout=0 does. A read that fails for a reason that may
// pass (a timeout, an apiserver that did not answer; permanentReadError) is
// tried again at the next poll, as kubectl wait does, and named in the
// error if the timeout passes.
func waitFor(ctx context.Context, c client.Client, namespace, name string, timeout time.Duration,
	done func(*v1alpha1.VirtualCluster) (bool, error)) (*v1alpha1.VirtualCluster, error) {
	var last *v1alpha1.VirtualCluster
	var lastErr error
	check := func(ctx context.Context) (bool, error) {
		vc, err := get(ctx, c, namespace, name)
		var nf *notFoundError
		if err != nil && !errors.As(err, &nf) && !permanentReadError(err) {
			if ctx.Err() == nil { // not the read the end of the wait cut short
				lastErr = err
			}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		last, lastErr = vc, nil
		return done(vc)
	}
	first, cancel := context.WithTimeout(ctx, max(timeout, firstLookTimeout))
	ok, err := check(first)
	cancel()
	if err == nil && !ok {
		err = wait.PollUntilContextTimeout(ctx, pollInterval, timeout, false, check)
	}
	if err == nil || !wait.Interrupted(err) {
		return last, err
	}
	state := fmt.Sprintf("still not done after %s", timeout)
	if ctx.Err() != nil {
		// Cut short (Ctrl-C), not timed out.
		state = fmt.Sprintf("still not done when the wait stopped (%v)", ctx.Err())
	}
	switch {
	case last == nil && lastErr != nil:
		return nil, fmt.Errorf("virtual cluster %s/%s is %s: reading it failed: %w", namespace, name, state, lastErr)
	case last == nil:
		return nil, fmt.Errorf("virtual cluster %s/%s is %s", namespace, name, state)
	case lastErr != nil:
		return last, fmt.Errorf("%w (the last read failed: %w)", notReady(last, state), lastErr)
	}
	return last, notReady(last, state)
}

// permanentReadError reports whether err, a failed read of a VirtualCluster,
// fails again however long one waits: the client may not read it
// (Unauthorized, Forbidden), the super cluster has no VirtualCluster API, or
// the request is wrong. Anything else (a timeout, too many requests, an
// apiserver restarting or not answering, a connection reset) may pass.
func permanentReadError(err error) bool {
	return apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) || meta.IsNoMatchError(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsInvalid(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsNotAcceptable(err) || apierrors.IsUnsupportedMediaType(err)
}

func provisionerOf(vc *v1alpha1.VirtualCluster) string {
	if cp := vc.Spec.ControlPlane; cp != nil && cp.Provisioner != "" {
		return string(cp.Provisioner)
	}
	return string(v1alpha1.ProvisionerLocal)
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
