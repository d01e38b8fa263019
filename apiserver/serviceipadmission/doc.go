// Package serviceipadmission is the tenant apiserver's admission step that takes the cluster IPs
// of a new Service from an external allocator (the syncer; protocol in internal/serviceip), so
// that the tenant Service gets exactly the cluster IPs of its super Service. `vnest apiserver`
// registers it only with --service-ip-allocator.
//
// On CREATE of a Service that needs cluster IPs (not ExternalName, not headless), and on an
// UPDATE that gives an ExternalName Service cluster IPs, it posts the Service to the allocator
// and sets spec.clusterIP(s), ipFamilies and ipFamilyPolicy from the answer, and the node ports
// of a NodePort or LoadBalancer Service's ports that have none; the tenant's own allocators then
// only record them, which is why the tenant's --service-cluster-ip-range must contain the super
// cluster's (and its node port range the super's; both default to 30000-32767). It authenticates with the apiserver's kubelet client certificate
// and, as for kubelets, does not verify the allocator's self-signed certificate.
//
// An allocator that cannot be reached fails the request (503) rather than letting the tenant
// allocate an IP the super cluster does not route. Skipped: the tenant's default/kubernetes
// Service (the apiserver creates it at start with the first IP of its range; pods reach the
// tenant apiserver through its Endpoints, never this IP) and dry-run requests (nothing may be
// reserved for them; the tenant allocator's dry-run answer stands).
//
// It must not know about the super cluster beyond that protocol.
package serviceipadmission
