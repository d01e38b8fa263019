package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// TestRefusedWhileRunning: a write the super cluster refuses in a Running
// tenant's resync (a ValidatingAdmissionPolicy an operator added that
// denies updates of the tenant's PKI Secret, and a new extraSAN that
// reissues the serving certificate) leaves the tenant Running while its
// control plane answers (checked with the PKI Secret as it is), with the
// refusal in ControlPlaneReady's message and a Warning event; once the
// policy goes, the retry reissues the certificate.
func TestRefusedWhileRunning(t *testing.T) {
	c := superClient(t)
	startManager(t, t.TempDir())
	vc := createAndWait(t, c, newVC("frozen"))
	t.Cleanup(func() {
		opts := tenantctl.DeleteOptions{Name: vc.Name, Namespace: vc.Namespace, Wait: true, Timeout: time.Minute}
		if err := tenantctl.Delete(context.WithoutCancel(t.Context()), c, opts, &strings.Builder{}); err != nil {
			t.Errorf("deleting %s: %v", vc.Name, err)
		}
	})
	lift := denyUpdates(t, c, vc.Namespace, vc.PKISecretName())

	patch := []byte(`{"spec":{"controlPlane":{"expose":{"extraSANs":["frozen.example.com"]}}}}`)
	if err := c.Patch(t.Context(), vc, client.RawPatch(client.Merge.Type(), patch)); err != nil {
		t.Fatal(err)
	}
	refused := "still Running (the tenant apiserver at " + vc.Status.Endpoint + " is ready), but the super cluster refused Secret default/frozen-pki"
	var phases []v1alpha1.VirtualClusterPhase
	var last *v1alpha1.VirtualCluster
	watch := func(ctx context.Context) (*metav1.Condition, error) {
		last = &v1alpha1.VirtualCluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(vc), last); err != nil {
			return nil, err
		}
		if len(phases) == 0 || phases[len(phases)-1] != last.Status.Phase {
			phases = append(phases, last.Status.Phase)
		}
		return meta.FindStatusCondition(last.Status.Conditions, v1alpha1.ConditionControlPlaneReady), nil
	}
	waitUntilMsg(t, time.Minute, func() string { return fmt.Sprintf("the refusal in ControlPlaneReady; last status %+v", last.Status) },
		func(ctx context.Context) (bool, error) {
			cp, err := watch(ctx)
			return err == nil && last.Status.ObservedGeneration == last.Generation && strings.HasPrefix(cp.Message, refused), err
		})
	// Tried again every 15 s, and Running all the while.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := watch(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	if len(phases) != 1 || phases[0] != v1alpha1.PhaseRunning {
		t.Errorf("phases seen = %v, want Running all the while", phases)
	}
	var events eventsv1.EventList
	if err := c.List(t.Context(), &events, client.InNamespace(vc.Namespace)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		found = found || (e.Regarding.Name == vc.Name && e.Type == corev1.EventTypeWarning && e.Reason == v1alpha1.ReasonPKIFailed && strings.HasPrefix(e.Note, refused))
	}
	if !found {
		t.Errorf("no Warning %s event %q… about %s", v1alpha1.ReasonPKIFailed, refused, vc.Name)
	}

	lift()
	waitUntilMsg(t, time.Minute, func() string { return fmt.Sprintf("the certificate reissued; last status %+v", last.Status) },
		func(ctx context.Context) (bool, error) {
			cp, err := watch(ctx)
			return err == nil && last.Status.Phase == v1alpha1.PhaseRunning && cp.Message == "the tenant apiserver at "+last.Status.Endpoint+" is ready", err
		})
}

// denyUpdates makes the super cluster refuse updates of Secret
// namespace/name, with a ValidatingAdmissionPolicy, until lift or the
// test's end; it returns once the policy is in force.
func denyUpdates(t *testing.T, c client.Client, namespace, name string) (lift func()) {
	t.Helper()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "vnest-test-deny-" + name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					ResourceNames: []string{name},
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "object.metadata.namespace != '" + namespace + "'",
				Message:    "Secret " + name + " is frozen by an operator's policy",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	var remove sync.Once
	t.Cleanup(func() { remove.Do(func() { deleteAll(t, c, binding, policy) }) })
	waitUntil(t, 30*time.Second, "the policy to be in force", func(ctx context.Context) (bool, error) {
		return dryRunUpdate(ctx, c, namespace, name) != nil, nil
	})
	return func() {
		remove.Do(func() { deleteAll(t, c, binding, policy) })
		// In force until the apiserver's informer sees it go.
		waitUntil(t, 30*time.Second, "the policy to be lifted", func(ctx context.Context) (bool, error) {
			return dryRunUpdate(ctx, c, namespace, name) == nil, nil
		})
	}
}

// deleteAll deletes objs, also from a Cleanup (t.Context is done by then).
func deleteAll(t *testing.T, c client.Client, objs ...client.Object) {
	for _, obj := range objs {
		if err := c.Delete(context.WithoutCancel(t.Context()), obj); err != nil {
			t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// dryRunUpdate updates Secret namespace/name as it is, without storing it:
// admission sees it all the same.
func dryRunUpdate(ctx context.Context, c client.Client, namespace, name string) error {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		return err
	}
	return c.Update(ctx, s, client.DryRunAll)
}
