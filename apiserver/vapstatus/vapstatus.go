package vapstatus

import (
	"context"
	"fmt"
	"sync"
	"time"

	apiextensionsscheme "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/scheme"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	validatingpolicy "k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	k8sscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kubernetes/pkg/controller/validatingadmissionpolicystatus"
	"k8s.io/kubernetes/pkg/generated/openapi"
)

// Name is the controller's name in kube-controller-manager's --controllers, and the user agent
// of its client here.
const Name = "validatingadmissionpolicy-status-controller"

// Workers is kube-controller-manager's default --concurrent-validating-admission-policy-status-syncs.
const Workers = 5

// mapperReset is how often kube-controller-manager resets its REST mapper, so that kinds of new
// CustomResourceDefinitions resolve.
const mapperReset = 30 * time.Second

// Run runs the controller against the apiserver of config until ctx is done.
func Run(ctx context.Context, config *rest.Config, workers int) error {
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(config), Name))
	if err != nil {
		return fmt.Errorf("%s client: %w", Name, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	go wait.Until(mapper.Reset, mapperReset, ctx.Done())
	checker := &validatingpolicy.TypeChecker{SchemaResolver: schemaResolver(client.Discovery()), RestMapper: mapper}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := validatingadmissionpolicystatus.NewController(factory.Admissionregistration().V1().ValidatingAdmissionPolicies(),
		client.AdmissionregistrationV1().ValidatingAdmissionPolicies(), checker)
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	c.Run(ctx, workers)
	return nil
}

// schemaResolver resolves what kube-controller-manager's resolver resolves: built-in types from
// upstream's generated definitions, the rest (custom resources) through discovery's OpenAPI v3.
// The definitions are built on the first call.
func schemaResolver(d discovery.DiscoveryInterface) resolver.SchemaResolver {
	return &lazyResolver{build: func() resolver.SchemaResolver {
		return resolver.NewDefinitionsSchemaResolver(openapi.GetOpenAPIDefinitions, k8sscheme.Scheme, apiextensionsscheme.Scheme).
			Combine(&resolver.ClientDiscoveryResolver{Discovery: d})
	}}
}

// lazyResolver is the resolver build returns, built on the first call and kept.
type lazyResolver struct {
	build func() resolver.SchemaResolver
	once  sync.Once
	r     resolver.SchemaResolver
}

func (l *lazyResolver) ResolveSchema(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	l.once.Do(func() { l.r = l.build() })
	return l.r.ResolveSchema(gvk)
}
