package apiserver

import (
	"context"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/apiserver/layout"
)

// renewInterval is how often a control plane that owns its PKI renews the leaf certificates
// that expire within 30 days (ownsPKI); tests shorten it.
var renewInterval = 12 * time.Hour

// ownsPKI tells whether the PKI files are this process's to renew: those in the state
// directory, which EnsurePKI created there. Files under another --pki-dir are whoever gave
// them's (the manager writes its tenants' from their <name>-pki Secret and renews them there;
// an operator may mount them read-only) and are used as they are.
func (c *completedConfig) ownsPKI() bool {
	return c.pkiDir == c.stateDir
}

// renewPKI reissues the leaf certificates that expire within 30 days (layout.RenewPKI) and
// logs which; a failure is logged too, and the next round tries again. kube-apiserver reads its
// serving, front-proxy client and kubelet client certificates and its CA bundles from their
// files again when they change, and the controllers their client certificate (their kubeconfig
// names its files); admin.kubeconfig embeds the admin's, so it is written again once ready
// (present). A copy of admin.kubeconfig taken elsewhere keeps the old certificate.
func (c CompletedConfig) renewPKI(logger klog.Logger, ready bool) {
	renewed, err := layout.RenewPKI(c.pkiDir)
	if len(renewed) > 0 {
		logger.Info("Renewed tenant certificates that expire within 30 days", "certificates", renewed, "dir", c.pkiDir)
	}
	if err != nil {
		logger.Error(err, "Renewing tenant certificates", "dir", c.pkiDir, "retryIn", renewInterval)
	}
	if ready && slices.Contains(renewed, layout.AdminCertName) {
		if err := c.writeKubeconfig(layout.AdminKubeconfigFile, c.kubeconfigServer, c.pki.Admin, false); err != nil {
			logger.Error(err, "Writing admin.kubeconfig with the renewed admin certificate")
		}
	}
}

// startRenewingPKI runs renewPKI every renewInterval until ctx is done or the returned
// function, which waits for it, is called.
func (c CompletedConfig) startRenewingPKI(ctx context.Context) (stop func()) {
	logger := klog.FromContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(renewInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.renewPKI(logger, true)
			}
		}
	}()
	return func() { cancel(); <-done }
}
