package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxNameLength is the longest metadata.name a VirtualCluster may have, so
// that every name vnest derives from it (for example "<name>-kubeconfig")
// stays within Kubernetes' limits. The CRD enforces it.
const MaxNameLength = 40

// VirtualCluster is a tenant's own Kubernetes control plane whose workloads run
// on the super cluster. The vnest manager provisions the control plane and
// writes the tenant kubeconfig into the Secret named by
// status.kubeconfigSecretName; the syncer then copies the tenant's objects into
// the super cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=vc,categories=vnest
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`,description="Lifecycle phase of the virtual cluster"
// +kubebuilder:printcolumn:name="Provisioner",type=string,JSONPath=`.spec.controlPlane.provisioner`,description="Where the tenant control plane runs"
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`,description="URL of the tenant apiserver"
// +kubebuilder:printcolumn:name="Syncing",type=string,JSONPath=`.status.conditions[?(@.type=="Syncing")].status`,priority=1,description="Whether the syncer serves this tenant"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40",message="metadata.name must be at most 40 characters so the names vnest derives from it fit Kubernetes limits: choose a shorter name"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label that starts with a letter (lowercase letters, digits and '-', no dots), e.g. team-a"
type VirtualCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the desired virtual cluster. Every field is optional.
	// +kubebuilder:default={}
	// +optional
	Spec VirtualClusterSpec `json:"spec,omitempty"`

	// status is written by the vnest manager.
	// +optional
	Status VirtualClusterStatus `json:"status,omitempty"`
}

// VirtualClusterSpec is the desired state of a VirtualCluster.
type VirtualClusterSpec struct {
	// storage selects the etcd that holds the tenant's data, under a key
	// prefix of its own. Empty means the etcd the manager was started with
	// (the super cluster's embedded etcd for `vnest up`). Immutable.
	// +kubebuilder:default={}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storage is immutable: create a new VirtualCluster to use different storage"
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`

	// controlPlane says how the tenant control plane runs and is reached.
	// +kubebuilder:default={}
	// +optional
	ControlPlane *ControlPlaneSpec `json:"controlPlane,omitempty"`

	// sync says which objects the syncer copies into the super cluster
	// beyond the ones it always syncs.
	// +kubebuilder:default={}
	// +optional
	Sync *SyncSpec `json:"sync,omitempty"`

	// policy constrains the tenant's workloads in the super cluster.
	// +kubebuilder:default={}
	// +optional
	Policy *PolicySpec `json:"policy,omitempty"`

	// clusterDomain is the tenant's DNS domain for Services. Immutable. At
	// most 230 characters, so that kubernetes.default.svc.<clusterDomain>
	// is a DNS name (253 at most), and each label at most 63, as in any
	// name DNS can look up.
	// +kubebuilder:default="cluster.local"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=230
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')",message="clusterDomain must be a DNS subdomain of lowercase letters, digits, '-' and '.', each label at most 63 characters, e.g. cluster.local"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterDomain is immutable: create a new VirtualCluster to use a different domain"
	// +optional
	ClusterDomain string `json:"clusterDomain,omitempty"`
}

// StorageSpec selects the tenant's etcd. Leave it empty for the etcd the
// manager was started with.
type StorageSpec struct {
	// etcd is a shared etcd cluster reached with client certificates.
	// +optional
	Etcd *EtcdStorage `json:"etcd,omitempty"`
}

// EtcdStorage is a shared etcd cluster. When it has auth enabled, the manager
// creates a user and role per tenant limited to the tenant's key prefix.
type EtcdStorage struct {
	// endpoints are the etcd client URLs, e.g. https://etcd-0.etcd:2379.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:XValidation:rule="(self.startsWith('https://') && self.size() > 8) || (self.startsWith('http://') && self.size() > 7)",message="each etcd endpoint must be a URL that starts with https:// (or http://), e.g. https://etcd-0.etcd:2379"
	// +listType=set
	// +required
	Endpoints []string `json:"endpoints"`

	// credentialsSecretRef names a Secret in the VirtualCluster's namespace
	// holding ca.crt, tls.crt and tls.key for the etcd client connection and,
	// when etcd auth is on, username and password of a user allowed to
	// manage users and roles.
	// +required
	CredentialsSecretRef SecretReference `json:"credentialsSecretRef"`
}

// SecretReference names a Secret in the VirtualCluster's namespace.
type SecretReference struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a Secret's name: a DNS subdomain of lowercase letters, digits, '-' and '.', e.g. etcd-client"
	// +required
	Name string `json:"name"`
}

// Provisioner is where the tenant control plane runs.
// +kubebuilder:validation:Enum=local;cluster
type Provisioner string

const (
	// ProvisionerLocal runs the control plane as a child process on the
	// manager's host; `vnest up` uses it.
	ProvisionerLocal Provisioner = "local"
	// ProvisionerCluster runs the control plane as a Deployment with a
	// Service and Secrets in the super cluster.
	ProvisionerCluster Provisioner = "cluster"
)

// ExposeType is how the tenant apiserver of the cluster provisioner is reached.
// +kubebuilder:validation:Enum=ClusterIP;NodePort
type ExposeType string

const (
	// ExposeClusterIP reaches the apiserver only from inside the super cluster.
	ExposeClusterIP ExposeType = "ClusterIP"
	// ExposeNodePort also reaches it on a port of every super-cluster node.
	ExposeNodePort ExposeType = "NodePort"
)

// ControlPlaneSpec says how the tenant control plane runs and is reached.
type ControlPlaneSpec struct {
	// provisioner is where the control plane runs. Immutable.
	// +kubebuilder:default=local
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="controlPlane.provisioner is immutable: create a new VirtualCluster to use another provisioner"
	// +optional
	Provisioner Provisioner `json:"provisioner,omitempty"`

	// resources of the control plane. The cluster provisioner gives them to
	// the control-plane container (default: requests of 100m CPU and 192Mi
	// memory, no limits). The local provisioner enforces the limits on its
	// child process with a cgroup of its own (cpu: CFS quota; memory: the
	// cgroup's limit), which needs the manager to run as root; requests do
	// not apply to it. With a memory limit, the Go runtime of the control
	// plane aims to stay under 90% of it. Without a CPU limit, a ready
	// control plane runs Go code on one core at a time (GOMAXPROCS 1); with
	// one, GOMAXPROCS is the Go runtime's, which follows the limit (rounded
	// up, at least 2). As in a container, neither CPU nor memory may be
	// negative, nor requested beyond its limit.
	// +kubebuilder:validation:XValidation:rule="['cpu', 'memory'].all(r, (!has(self.limits) || !(r in self.limits) || !quantity(string(self.limits[r])).isLessThan(quantity('0'))) && (!has(self.requests) || !(r in self.requests) || !quantity(string(self.requests[r])).isLessThan(quantity('0'))))",message="controlPlane.resources: cpu and memory limits and requests must be zero or more"
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || ['cpu', 'memory'].all(r, !(r in self.limits) || !(r in self.requests) || !quantity(string(self.requests[r])).isGreaterThan(quantity(string(self.limits[r]))))",message="controlPlane.resources: a cpu or memory request must not be more than its limit"
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// expose says how the tenant apiserver is reached.
	// +kubebuilder:default={}
	// +optional
	Expose *ExposeSpec `json:"expose,omitempty"`
}

// ExposeSpec says how the tenant apiserver is reached.
type ExposeSpec struct {
	// type of the Service in front of the apiserver (cluster provisioner).
	// +kubebuilder:default=ClusterIP
	// +optional
	Type ExposeType `json:"type,omitempty"`

	// extraSANs are host names or IP addresses added to the apiserver's
	// serving certificate, besides the ones the manager knows of.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || self.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="each extraSAN must be an IP address or a lowercase DNS name (optionally starting with *.), e.g. vc.example.com"
	// +listType=set
	// +optional
	ExtraSANs []string `json:"extraSANs,omitempty"`
}

// SyncKind is a kind the syncer copies only when the tenant opts in.
// +kubebuilder:validation:Enum=Ingress;NetworkPolicy;PodDisruptionBudget
type SyncKind string

const (
	SyncKindIngress             SyncKind = "Ingress"
	SyncKindNetworkPolicy       SyncKind = "NetworkPolicy"
	SyncKindPodDisruptionBudget SyncKind = "PodDisruptionBudget"
)

// SyncScope says which Secrets and ConfigMaps the syncer copies down.
// +kubebuilder:validation:Enum=Used;All
type SyncScope string

const (
	// SyncScopeUsed copies only the Secrets and ConfigMaps the tenant's pods
	// use (volumes, env, image pull secrets).
	SyncScopeUsed SyncScope = "Used"
	// SyncScopeAll copies every Secret and ConfigMap of the tenant.
	SyncScopeAll SyncScope = "All"
)

// SyncSpec says which objects the syncer copies into the super cluster beyond
// the ones it always syncs (namespaces, pods, services, endpoints, PVCs, the
// Secrets and ConfigMaps pods use…).
type SyncSpec struct {
	// kinds are the opt-in kinds to sync.
	// +kubebuilder:validation:MaxItems=3
	// +listType=set
	// +optional
	Kinds []SyncKind `json:"kinds,omitempty"`

	// secretsAndConfigMaps is Used (only those the tenant's pods use) or All.
	// +kubebuilder:default=Used
	// +optional
	SecretsAndConfigMaps SyncScope `json:"secretsAndConfigMaps,omitempty"`
}

// PodSecurityLevel is a Pod Security Standards level.
// +kubebuilder:validation:Enum=privileged;baseline;restricted
type PodSecurityLevel string

const (
	PodSecurityPrivileged PodSecurityLevel = "privileged"
	PodSecurityBaseline   PodSecurityLevel = "baseline"
	PodSecurityRestricted PodSecurityLevel = "restricted"
)

// PolicySpec constrains the tenant's workloads in the super cluster, whatever
// the tenant asks for in its own control plane.
type PolicySpec struct {
	// podSecurityLevel is enforced on the tenant's pods in the super cluster.
	// +kubebuilder:default=baseline
	// +optional
	PodSecurityLevel PodSecurityLevel `json:"podSecurityLevel,omitempty"`

	// nodeSelector is merged into every tenant pod; it wins over the
	// tenant's own entries for the same keys.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations are added to every tenant pod.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// quota is the hard limit of the tenant's usage in the super cluster,
	// as in a ResourceQuota's spec.hard.
	// +optional
	Quota corev1.ResourceList `json:"quota,omitempty"`
}

// VirtualClusterPhase is a coarse summary of a VirtualCluster's state; the
// conditions say why.
// +kubebuilder:validation:Enum=Pending;Provisioning;Running;Failed;Terminating
type VirtualClusterPhase string

const (
	PhasePending      VirtualClusterPhase = "Pending"
	PhaseProvisioning VirtualClusterPhase = "Provisioning"
	PhaseRunning      VirtualClusterPhase = "Running"
	PhaseFailed       VirtualClusterPhase = "Failed"
	PhaseTerminating  VirtualClusterPhase = "Terminating"
)

// Condition types.
const (
	// ConditionControlPlaneReady is True when the tenant apiserver answers
	// its readiness check.
	ConditionControlPlaneReady = "ControlPlaneReady"
	// ConditionKubeconfigReady is True when the kubeconfig Secret holds a
	// kubeconfig for the current endpoint and CA.
	ConditionKubeconfigReady = "KubeconfigReady"
	// ConditionSyncing is True when a syncer serves the tenant; False when it stopped serving
	// it or cannot serve it (the message says why); Unknown until a syncer serves it, and when
	// the syncer's heartbeat Lease expired while it was True (the manager sets that: a syncer
	// that stopped changes nothing itself).
	ConditionSyncing = "Syncing"
)

// Condition reasons. A condition's message carries the detail; the reason is
// what a client may switch on.
const (
	// ReasonProvisioning: the control plane is being created or started.
	ReasonProvisioning = "Provisioning"
	// ReasonReady: the condition's subject works.
	ReasonReady = "Ready"
	// ReasonStorageUnavailable: the tenant's etcd cannot be reached or refused us.
	ReasonStorageUnavailable = "StorageUnavailable"
	// ReasonCredentialsInvalid: the etcd credentials Secret is missing or lacks a key.
	ReasonCredentialsInvalid = "CredentialsInvalid"
	// ReasonPKIFailed: the tenant's certificates could not be created or loaded.
	ReasonPKIFailed = "PKIFailed"
	// ReasonProvisionFailed: the provisioner could not start the control plane.
	ReasonProvisionFailed = "ProvisionFailed"
	// ReasonRetrying: a step of a tenant that is not Running failed for a reason that may pass
	// by itself (a call to the super cluster's API that timed out, conflicted or was not
	// answered); it is tried again, and the phase stays Provisioning.
	ReasonRetrying = "Retrying"
	// ReasonControlPlaneUnhealthy: the control plane runs but does not answer.
	ReasonControlPlaneUnhealthy = "ControlPlaneUnhealthy"
	// ReasonWaitingForControlPlane: this condition waits for ControlPlaneReady.
	ReasonWaitingForControlPlane = "WaitingForControlPlane"
	// ReasonKubeconfigWriteFailed: the kubeconfig Secret could not be written.
	ReasonKubeconfigWriteFailed = "KubeconfigWriteFailed"
	// ReasonSyncerNotServing: no syncer serves the tenant: none has picked it up yet, or the
	// syncer's heartbeat Lease has not been renewed for its duration and 10 s more, so the
	// syncer may have stopped (Unknown); or the syncer stopped serving it or cannot serve it
	// (False).
	ReasonSyncerNotServing = "SyncerNotServing"
	// ReasonDeleting: the VirtualCluster is being deleted and cleaned up, or its namespace is
	// (a step that failed then is the deletion at work; the phase is Terminating).
	ReasonDeleting = "Deleting"
)

// Reasons of a tenant pod's condition PodScheduled=False when the syncer does not run the pod in
// the super cluster; the condition's message says what to change, and a Warning event of the same
// reason goes with it.
const (
	// PodReasonSecurityViolation: the pod breaks the VirtualCluster's spec.policy.podSecurityLevel.
	PodReasonSecurityViolation = "PodSecurityViolation"
	// PodReasonQuotaExceeded: the pod does not fit the VirtualCluster's spec.policy.quota.
	PodReasonQuotaExceeded = "TenantQuotaExceeded"
	// PodReasonSuperRejected: the super cluster refused the pod.
	PodReasonSuperRejected = "SuperClusterRejected"
)

// VirtualClusterStatus is written by the vnest manager.
type VirtualClusterStatus struct {
	// phase is a coarse summary; conditions say why.
	// +optional
	Phase VirtualClusterPhase `json:"phase,omitempty"`

	// conditions are ControlPlaneReady, KubeconfigReady and Syncing.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// observedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// clusterKey identifies the tenant in the super cluster: it prefixes the
	// tenant's super namespaces and is the value of the ownership labels. It is
	// ClusterKey(namespace, name, uid), set once and never changed.
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="status.clusterKey cannot change once set: the tenant's super-cluster objects are named and labelled from it"
	// +optional
	ClusterKey string `json:"clusterKey,omitempty"`

	// superNamespacePrefix starts the name of every super-cluster namespace
	// holding the tenant's objects ("<clusterKey>-").
	// +optional
	SuperNamespacePrefix string `json:"superNamespacePrefix,omitempty"`

	// kubeconfigSecretName is the Secret in the VirtualCluster's namespace
	// with the tenant admin kubeconfig under the key "kubeconfig".
	// +optional
	KubeconfigSecretName string `json:"kubeconfigSecretName,omitempty"`

	// endpoint is the URL of the tenant apiserver.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// etcdPrefix is the etcd key prefix under which the tenant's data lives.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="status.etcdPrefix cannot change once set: the tenant's data lives under it"
	// +optional
	EtcdPrefix string `json:"etcdPrefix,omitempty"`
}

// VirtualClusterList is a list of VirtualClusters.
//
// +kubebuilder:object:root=true
type VirtualClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&VirtualCluster{}, &VirtualClusterList{})
}

// GetConditions returns the status conditions, for use with
// k8s.io/apimachinery/pkg/api/meta.SetStatusCondition and friends.
func (vc *VirtualCluster) GetConditions() []metav1.Condition {
	return vc.Status.Conditions
}

// SetConditions replaces the status conditions.
func (vc *VirtualCluster) SetConditions(conditions []metav1.Condition) {
	vc.Status.Conditions = conditions
}

// KubeconfigSecretName is the name of the Secret, in the VirtualCluster's
// namespace, that holds the tenant admin kubeconfig: "<name>-kubeconfig".
func (vc *VirtualCluster) KubeconfigSecretName() string {
	return vc.Name + "-kubeconfig"
}

// PKISecretName is the name of the Secret, in the VirtualCluster's
// namespace, that holds the tenant's certificates and keys: "<name>-pki".
func (vc *VirtualCluster) PKISecretName() string {
	return vc.Name + "-pki"
}
