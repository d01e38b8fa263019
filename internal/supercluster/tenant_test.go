package supercluster

import (
	"context"
	"strconv"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// TestCRDCreatedMeanwhile: another installer (a test harness, kubectl apply) creates the CRD
// between vnest up's read and its create. vnest up then updates it to its own version instead
// of failing, which stopped the whole super cluster.
func TestCRDCreatedMeanwhile(t *testing.T) {
	scheme, theirs, ours := crdVersions(t)
	raced := false
	cl := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if !raced { // the other installer gets there first
				raced = true
				if err := c.Create(ctx, theirs.DeepCopy()); err != nil {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	if err := createOrUpdateCRD(t.Context(), cl, ours); err != nil {
		t.Fatalf("createOrUpdateCRD after a concurrent create: %v", err)
	}
	checkOurs(t, cl, ours)
}

// TestCRDChangedMeanwhile: the CRD exists and its status moves (the apiextensions controllers
// mark it Established) between vnest up's read and its update. The update conflicts; vnest up
// reads again and updates instead of failing, which stopped the whole super cluster.
func TestCRDChangedMeanwhile(t *testing.T) {
	scheme, theirs, ours := crdVersions(t)
	moved := 0
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(theirs).WithInterceptorFuncs(interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if moved < 2 { // the object changes after each of the first two reads
				moved++
				var now apiextensionsv1.CustomResourceDefinition
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &now); err != nil {
					return err
				}
				now.Annotations = map[string]string{"moved": strconv.Itoa(moved)}
				if err := c.Update(ctx, &now); err != nil {
					return err
				}
			}
			return c.Update(ctx, obj, opts...)
		},
	}).Build()
	if err := createOrUpdateCRD(t.Context(), cl, ours); err != nil {
		t.Fatalf("createOrUpdateCRD while the CRD changes: %v", err)
	}
	checkOurs(t, cl, ours)
}

// crdVersions are a scheme with CRDs, a CRD as another installer made it and vnest's version
// of the same CRD.
func crdVersions(t *testing.T) (scheme *runtime.Scheme, theirs, ours *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	scheme = runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	theirs = &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "things.example.dev"},
		Spec:       apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.dev", Scope: apiextensionsv1.ClusterScoped},
	}
	ours = theirs.DeepCopy()
	ours.Spec.Scope = apiextensionsv1.NamespaceScoped
	ours.Labels = map[string]string{"version": "ours"}
	return scheme, theirs, ours
}

// checkOurs checks that the CRD in cl is vnest's version.
func checkOurs(t *testing.T, cl client.Client, ours *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	var got apiextensionsv1.CustomResourceDefinition
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(ours), &got); err != nil {
		t.Fatal(err)
	}
	if got.Labels["version"] != "ours" || got.Spec.Scope != apiextensionsv1.NamespaceScoped {
		t.Errorf("CRD after the race: labels %v, scope %s; want ours", got.Labels, got.Spec.Scope)
	}
}
