package tenantctl

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/manager"
)

// Connect returns a client for the super cluster of kubeconfig (empty:
// kubectl's rules: $KUBECONFIG, in-cluster, ~/.kube/config) and the
// namespace to use: namespace if set, else the kubeconfig context's, else
// "default".
func Connect(kubeconfig, namespace string) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{
		Context: clientcmdapi.Context{Namespace: namespace},
	})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading the super cluster's kubeconfig (set --kubeconfig or $KUBECONFIG): %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return nil, "", fmt.Errorf("connecting to the super cluster at %s: %w", cfg.Host, err)
	}
	return c, ns, nil
}
