package apiserver

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/mutating"
	"k8s.io/apiserver/pkg/registry/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/configz"
	aggregatorapiserver "k8s.io/kube-aggregator/pkg/apiserver"
	kubeapiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kubeapiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/vnest-dev/vnest/apiserver/openapibytes"
	"github.com/vnest-dev/vnest/apiserver/serviceipadmission"
	"github.com/vnest-dev/vnest/apiserver/sharedetcd"
)

// The upstream commands (app.NewAPIServerCommand, app.NewControllerManagerCommand)
// are not used: the first installs a process-wide signal handler that may
// only be set up once, the second runs its controllers on
// context.Background(), so neither could be stopped or restarted in one
// process. Below are the same steps those commands take, minus
// logging setup (the process configures klog once) and signal handling
// (the caller's context is the only stop signal).

// kubeAPIServer returns the preparer of the tenant's kube-apiserver, with the
// Service IP admission step when it is configured.
func (c *completedConfig) kubeAPIServer() func(context.Context, []string) (func(context.Context) error, error) {
	return func(ctx context.Context, args []string) (func(context.Context) error, error) {
		return prepareKubeAPIServer(ctx, args, c.serviceIPAdmission())
	}
}

// serviceIPAdmission configures the Service IP admission step; nil without --service-ip-allocator.
func (c *completedConfig) serviceIPAdmission() *serviceipadmission.Config {
	if c.opts.ServiceIPAllocator == "" {
		return nil
	}
	return &serviceipadmission.Config{URL: c.opts.ServiceIPAllocator, CertFile: c.pki.KubeletClient.CertFile, KeyFile: c.pki.KubeletClient.KeyFile}
}

// prepareKubeAPIServer parses args like kube-apiserver would and builds the
// server chain; the returned function serves until ctx is done. With
// serviceIP, the Service IP admission step runs right after the mutating
// webhooks, so it sees the Service's final type.
func prepareKubeAPIServer(ctx context.Context, args []string, serviceIP *serviceipadmission.Config) (func(context.Context) error, error) {
	s := kubeapiserveroptions.NewServerRunOptions()
	if serviceIP != nil {
		admission := s.Admission.GenericAdmission
		serviceipadmission.Register(admission.Plugins, *serviceIP)
		i := slices.Index(admission.RecommendedPluginOrder, mutating.PluginName)
		// Cloned: the default order is a package-level slice of kube-apiserver.
		admission.RecommendedPluginOrder = slices.Insert(slices.Clone(admission.RecommendedPluginOrder), i+1, serviceipadmission.PluginName)
	}
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	// The registry is process-wide and shared with the controller manager;
	// neither sets versions or feature gates, so this is a no-op after the
	// first call.
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	config, err := kubeapiserver.NewConfig(completed)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	// The apiextensions server's and the aggregator's configs share these OpenAPI configs.
	openapibytes.DetachBuilders(config.KubeAPIs.ControlPlane.Generic.OpenAPIConfig, config.KubeAPIs.ControlPlane.Generic.OpenAPIV3Config)
	// Run does their work sooner (seedBootstrapPolicy).
	config.KubeAPIs.ControlPlane.Generic.DisabledPostStartHooks.Insert(replacedHooks...)
	// One etcd connection for the storage of every resource (package sharedetcd).
	etcd := sharedetcd.New()
	for _, getter := range []*generic.RESTOptionsGetter{
		&config.KubeAPIs.ControlPlane.Generic.RESTOptionsGetter,
		&config.ApiExtensions.GenericConfig.RESTOptionsGetter,
		&config.ApiExtensions.ExtraConfig.CRDRESTOptionsGetter,
		&config.Aggregator.GenericConfig.RESTOptionsGetter,
	} {
		*getter = etcd.Wrap(*getter)
	}
	run, err := serverChain(config)
	if err != nil {
		etcd.Close()
		return nil, err
	}
	return func(ctx context.Context) error {
		defer etcd.Close()
		return run(ctx)
	}, nil
}

// serverChain completes config and builds the server chain; the returned function serves until
// ctx is done.
func serverChain(config *kubeapiserver.Config) (func(context.Context) error, error) {
	// The kube-apiserver's OpenAPI documents are installed below, served from their bytes.
	config.KubeAPIs.ControlPlane.Generic.SkipOpenAPIInstallation = true
	cc, err := config.Complete()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	server, err := kubeapiserver.CreateServerChain(cc)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	if err := installOpenAPI(server, config.KubeAPIs.ControlPlane.Generic); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	// Every document of the chain is built by now.
	openapibytes.ReleaseDefinitions(config.KubeAPIs.ControlPlane.Generic.OpenAPIV3Config)
	return prepared.Run, nil
}

// installOpenAPI installs the OpenAPI documents of the built-in APIs of the kube-apiserver in
// server's chain (the aggregator's delegate), which its PrepareRun leaves out with
// SkipOpenAPIInstallation: the same documents, served from their bytes (package openapibytes).
// The aggregator's PrepareRun, later, reads them through the delegate's handler as before.
func installOpenAPI(server *aggregatorapiserver.APIAggregator, generic *genericapiserver.Config) error {
	kube, ok := server.GenericAPIServer.NextDelegate().(*genericapiserver.GenericAPIServer)
	if !ok {
		return fmt.Errorf("the aggregator's delegate is a %T, not the kube-apiserver", server.GenericAPIServer.NextDelegate())
	}
	container, m := kube.Handler.GoRestfulContainer, kube.Handler.NonGoRestfulMux
	if generic.OpenAPIConfig != nil {
		if err := openapibytes.InstallV2(container, m, generic.OpenAPIConfig); err != nil {
			return err
		}
	}
	if generic.OpenAPIV3Config != nil {
		if err := openapibytes.InstallV3(container, m, generic.OpenAPIV3Config); err != nil {
			return err
		}
	}
	return nil
}

// prepareControllerManager parses args like kube-controller-manager would
// and builds its configuration; the returned function runs the controllers
// until ctx is done.
func prepareControllerManager(ctx context.Context, args []string) (func(context.Context) error, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	known, disabled, aliases := kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases()
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range s.Flags(known, disabled, aliases).FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-controller-manager: %w", err)
	}
	c, err := s.Config(ctx, known, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager config: %w", err)
	}
	cc := c.Complete()
	return func(ctx context.Context) error {
		// kcm.Run registers its configuration under a fixed process-wide
		// configz name and fails when it is taken, which it still is after
		// a previous run in this process (a restart).
		configz.Delete(kcm.ConfigzName)
		return kcm.Run(ctx, cc)
	}, nil
}
