// Package kubeletproxy serves the kubelet API of a tenant's virtual nodes, so that `kubectl
// logs`, `exec`, `attach` and `port-forward` on a tenant pod work without a per-node agent.
//
// A tenant apiserver handles pods/log, pods/exec, pods/attach and pods/portforward like any
// kube-apiserver: it authorizes the user with the tenant's RBAC, then calls the kubelet of the
// pod's node at the node's InternalIP and status.daemonEndpoints.kubeletEndpoint.Port. The
// syncer publishes virtual nodes whose only InternalIP and kubelet port are this proxy's
// (syncer flags --kubelet-proxy-bind-address and --kubelet-proxy-advertise-address; the tenant
// apiserver prefers InternalIP), so every such call lands here. The proxy
//
//  1. identifies the tenant by the TLS client certificate: the apiserver's kubelet client
//     certificate (CN layout.KubeletClientUser, signed by the tenant CA; the manager issues it
//     with the tenant PKI) must verify against the CA of exactly one tenant the syncer serves
//     (Running, caches synced; the CA comes from the tenant's kubeconfig; only the CAs whose
//     SubjectKeyId is the leaf's AuthorityKeyId are checked, one signature check per request
//     where each tenant CA has its own key), signed by that CA
//     itself (intermediates the caller sends are not used: chains built through them would
//     cost signature checks of the caller's choosing before it is known), and be, byte for
//     byte, the certificate the syncer read from the tenant's PKI Secret (Tenant.KubeletClient);
//  2. translates the kubelet path to the pod subresource of the super apiserver (translate);
//  3. allows only the super pod of the same name in the tenant namespace's super namespace that
//     carries this tenant's ownership labels and was made from the tenant pod that exists now;
//  4. proxies with the syncer's super-cluster credentials: logs as a flushed stream, exec,
//     attach and port-forward as upgraded connections (SPDY; WebSocket passes through too)
//     with k8s.io/apimachinery's UpgradeAwareHandler.
//
// Trust model. The tenant's RBAC is the only authorization of the user: the proxy trusts the
// tenant apiserver, proven by its client certificate, to have checked it, exactly as a kubelet
// trusts kube-apiserver. No other certificate is accepted: not the tenant admin's or any other of
// the tenant CA (the common name must be the kubelet client's), not one of another tenant's CA,
// and not one a tenant user got through a CertificateSigningRequest, whatever name it asked for:
// the tenant's CSR signer has a CA of its own (layout.CSRSignerCAName), which the tenant
// apiserver trusts for client certificates and the proxy does not. Before it had, the CSR signer
// was the tenant CA, and the certificates it signed then for the kubelet client's name stay
// valid for up to a year; the pin refuses them. It is the exact certificate (DER), not its key:
// the manager reissues the certificate with a new key 30 days before it expires, so a key pin
// would follow a renewal no better, and the certificate names its usage and subject too. A
// renewal changes what the syncer read, so it serves the tenant again with the new pin (the
// manager restarts the control plane with the new certificate); a certificate of the tenant CA
// refused for not being the pin tells the syncer (Config.PinMismatch) to re-read the Secret at
// once, besides the syncer's own re-read every 10 minutes. The tenant CA is verified as well. A syncer that cannot read the PKI Secret
// (no access, no such key) serves the tenant without a pin, on the CA and the name alone, and
// logs it when it starts serving the tenant. The super apiserver then authorizes
// the syncer's own identity, which needs get on pods/log and create+get on pods/exec,
// pods/attach and pods/portforward (manifests/syncer). Credentials and identity headers of the
// incoming request (Authorization, Impersonate-*, X-Remote-*) are dropped before proxying.
// The serving certificate is self-signed, made at start: tenant apiservers do not set
// --kubelet-certificate-authority, so they do not verify it, as kube-apiserver does not verify
// kubelets by default. Someone who can intercept traffic between a tenant apiserver and the
// syncer can therefore read or inject the streams of that tenant's sessions (not impersonate
// the tenant: the client certificate's key never leaves the apiserver); run both on a network
// you trust, as with kubelets.
//
// Bounds. Tenant pods reach the listener too: a connection must send its request's headers
// within 10 s and is closed after 90 s without a request, and a tenant has at most
// Config.MaxRequestsPerTenant kubelet API requests going at once (429 Too Many Requests past
// it; counted once the tenant is identified), since the tenant apiserver's in-flight limit does
// not count long-running requests and each holds goroutines, two connections and a buffer here;
// all tenants together have at most Config.MaxRequests, so that many tenants at their limit
// cannot take the syncer's memory from the syncing of every tenant. Streams have no time limit.
//
// Other endpoints of the syncer for tenant apiservers share the listener and the identification
// (Config.Handlers): the Service IP allocator (internal/serviceip) is one.
//
// What it must not do: reach any pod that is not the calling tenant's, serve any other part of
// the kubelet API (stats, metrics, /run, /pods, checkpoints describe the super node), or
// forward the caller's credentials. It never writes objects.
package kubeletproxy
