package manager

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// Retry intervals. Failures a user must fix are retried slowly but forever,
// so fixing them (creating the missing Secret, say) is enough; a control
// plane that is starting is polled quickly because that is what users wait on.
const (
	retryFailure  = 15 * time.Second
	retryStarting = time.Second
	resyncRunning = 2 * time.Minute
	// retryHealthCheck is how soon a running control plane that failed a
	// health check is checked again (a kubelet probe's default period).
	retryHealthCheck = 10 * time.Second
)

// phaseError is how a phase function reports why it stopped: the condition
// reason, a message that tells a user what is wrong (and what to do), and
// when to look again. A nil-reason error from a phase is unexpected (an API
// call failed) and is retried with the controller's backoff.
type phaseError struct {
	reason  string
	message string
	// retryAfter is when to look again; 0 means return the error and back off.
	retryAfter time.Duration
	// waiting marks the normal "not there yet" of a starting control plane:
	// no Warning event for it.
	waiting bool
	// transient marks a failure that may pass by itself (an etcd that did
	// not answer, a failed call to the super cluster's API, a failed health
	// check), as opposed to one that needs a fix from outside (the spec, a
	// credentials Secret): a running tenant leaves Running only after
	// failureThreshold resyncs in a row failed so (graced), and then only
	// once its control plane does not answer (transientWhileRunning).
	transient bool
	// refused marks a write the super cluster refused for its content
	// (refusedError): not transient, since sent again it is refused again,
	// but a running tenant's control plane that still answers runs on
	// (refusedWhileRunning).
	refused bool
	// stillReady marks a failure of a running tenant's resync that leaves
	// it Running: a transient one below the failure threshold (graced), or
	// one of a step other than the health check while its control plane
	// answers (checkedRunning: a transient one at the threshold, a refused
	// write).
	// The condition it concerns stays True, with the failure in its
	// message, and so the phase stays Running.
	stillReady bool
	// retrying marks a transient failure of a tenant that has not run
	// (retrying): the condition it concerns is False with ReasonRetrying,
	// not reason, so the phase stays Provisioning.
	retrying bool
}

func (e *phaseError) Error() string { return e.reason + ": " + e.message }

// conditionReason is the reason the condition e concerns gets when it goes
// False, and its Warning event's.
func (e *phaseError) conditionReason() string {
	if e.retrying {
		return v1alpha1.ReasonRetrying
	}
	return e.reason
}

// retrying is pe, a transient failure of a tenant that has not run (or
// has come through a resync since it failed as a running one; runPhases),
// as it is recorded: a reason that needs a fix
// (failedReasons, KubeconfigWriteFailed) would make the phase Failed, which
// says something outside must change (and ends `vnest create --wait`),
// though the next try may well go through; its condition says Retrying
// instead, and the phase Provisioning. Other reasons (StorageUnavailable,
// Pending) say already that the tenant waits, and are kept.
func retrying(pe *phaseError) *phaseError {
	if !failedReasons[pe.reason] && pe.reason != v1alpha1.ReasonKubeconfigWriteFailed {
		return pe
	}
	out := *pe
	out.retrying = true
	return &out
}

// transientError is an unexpected error (an API call that failed) that may
// pass by itself: asPhaseError makes it a transient phaseError.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// transient marks err, a failed call to the super cluster's API, as one
// that may pass by itself.
func transient(err error) error { return transientError{err} }

// refusedError is a write the super cluster's apiserver refused for what it
// asked (refused): asPhaseError makes it a failure, not a transient one.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// refused reports an error of the super cluster's API that refuses a
// request for its content: the object is invalid (built from the spec and
// the manager's flags), or an admission plugin (a ResourceQuota, a
// webhook), the namespace's policy or RBAC forbids it. Sent again as it is,
// it is refused again until something outside the manager changes.
func refused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// writeError is err, a failed write of object (its kind, namespace and
// name) to the super cluster, as a phase reports it: a refusal (refused) is
// a failure retried every retryFailure, with the apiserver's message, so a
// tenant that is not Running is Failed at once (a Running one whose control
// plane still answers stays Running: refusedWhileRunning); any other
// failure (a timeout, a conflict, an apiserver that did not answer) is
// transient, and "action object: err".
//
// A quota's refusal may pass by itself, when other objects of the
// namespace go; it is still a failure, not transient: the condition says
// so with the quota's message while it lasts (someone may have to act),
// and the retry every retryFailure goes through once it fits.
func writeError(err error, action, object string) error {
	if refused(err) {
		return refusedError{fmt.Errorf("the super cluster refused %s (tried again every %s; it needs a change of the "+
			"VirtualCluster's spec, the manager's flags, or the namespace's quota or policies): %w", object, retryFailure, err)}
	}
	return transient(fmt.Errorf("%s %s: %w", action, object, err))
}

// failure is a problem the user (or the environment) must fix.
func failure(reason, format string, args ...any) *phaseError {
	return &phaseError{reason: reason, message: fmt.Sprintf(format, args...), retryAfter: retryFailure}
}

// waitingFor is a control plane on its way up.
func waitingFor(after time.Duration, format string, args ...any) *phaseError {
	return &phaseError{reason: v1alpha1.ReasonProvisioning, message: fmt.Sprintf(format, args...), retryAfter: after, waiting: true}
}

// asPhaseError turns any error of a phase into a phaseError; unexpected
// errors get reason and back off.
func asPhaseError(err error, reason string) *phaseError {
	var pe *phaseError
	if errors.As(err, &pe) {
		return pe
	}
	if errors.As(err, new(refusedError)) {
		return &phaseError{reason: reason, message: err.Error(), retryAfter: retryFailure, refused: true}
	}
	return &phaseError{reason: reason, message: err.Error(), transient: errors.As(err, new(transientError))}
}

// setIdentity fills the status fields derived from the object's identity.
// They are set once: the CRD refuses to change clusterKey and etcdPrefix,
// and everything in the super cluster and etcd is named after them.
func setIdentity(vc *v1alpha1.VirtualCluster) {
	if vc.Status.ClusterKey == "" {
		vc.Status.ClusterKey = v1alpha1.ClusterKey(vc.Namespace, vc.Name, vc.UID)
	}
	if vc.Status.EtcdPrefix == "" {
		vc.Status.EtcdPrefix = EtcdPrefix(vc.Status.ClusterKey)
	}
	vc.Status.SuperNamespacePrefix = ownership.NamespacePrefix(vc.Status.ClusterKey)
	vc.Status.KubeconfigSecretName = vc.KubeconfigSecretName()
}

func setCondition(vc *v1alpha1.VirtualCluster, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&vc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: conditionMessage(message), ObservedGeneration: vc.Generation,
	})
}

// maxConditionMessage is the longest message a condition may have
// (metav1.Condition's maxLength, in characters; counted here in bytes, which
// is never fewer): a status with a longer one is refused whole, the phase
// with it.
const maxConditionMessage = 32768

// conditionTail is how much of the end of a message too long for a
// condition is kept, beside its start: the start says what failed, the end
// how often (graced) and the last words of the cause.
const conditionTail = 1024

// conditionMessage is message cut to maxConditionMessage bytes when longer:
// a message made of what the manager does not bound (an apiserver's or a
// webhook's refusal, a pod's termination message, an etcd error) may be.
// It keeps the start and the last conditionTail bytes, at character
// boundaries, with what was cut between them.
func conditionMessage(message string) string {
	if len(message) <= maxConditionMessage {
		return message
	}
	tail := len(message) - conditionTail
	for tail < len(message) && !utf8.RuneStart(message[tail]) {
		tail++
	}
	// The marker's own length has at most 6 digits.
	head := maxConditionMessage - (len(message) - tail) - len(" … [ bytes cut] … ") - 6
	for head > 0 && !utf8.RuneStart(message[head]) {
		head--
	}
	return fmt.Sprintf("%s … [%d bytes cut] … %s", message[:head], tail-head, message[tail:])
}

// setFailed records why the control plane or its kubeconfig is not ready.
// A failure to write the kubeconfig concerns KubeconfigReady and leaves
// ControlPlaneReady alone; any other failure concerns ControlPlaneReady and
// means the kubeconfig waits for the control plane. A transient failure of
// a running tenant below the failure threshold, or one whose control plane
// answers (stillReady), changes only the message of the condition it concerns; one of a tenant that has not
// run (retrying) makes it False with ReasonRetrying. A failure in a
// namespace being deleted (namespaceDeleted) makes both Deleting.
func setFailed(vc *v1alpha1.VirtualCluster, e *phaseError) {
	if e.reason == v1alpha1.ReasonDeleting {
		setDeleting(vc, e.message)
		return
	}
	typ := v1alpha1.ConditionControlPlaneReady
	if e.reason == v1alpha1.ReasonKubeconfigWriteFailed {
		typ = v1alpha1.ConditionKubeconfigReady
	}
	if e.stillReady {
		setCondition(vc, typ, metav1.ConditionTrue, v1alpha1.ReasonReady, e.message)
		return
	}
	setCondition(vc, typ, metav1.ConditionFalse, e.conditionReason(), e.message)
	if typ == v1alpha1.ConditionControlPlaneReady {
		setCondition(vc, v1alpha1.ConditionKubeconfigReady, metav1.ConditionFalse, v1alpha1.ReasonWaitingForControlPlane,
			"the kubeconfig is written once the control plane is ready")
	}
}

// setControlPlaneReady records a control plane that answered /readyz.
func setControlPlaneReady(vc *v1alpha1.VirtualCluster) {
	setCondition(vc, v1alpha1.ConditionControlPlaneReady, metav1.ConditionTrue, v1alpha1.ReasonReady,
		"the tenant apiserver at "+vc.Status.Endpoint+" is ready")
}

// setKubeconfigReady records a kubeconfig Secret that matches the endpoint.
func setKubeconfigReady(vc *v1alpha1.VirtualCluster) {
	setCondition(vc, v1alpha1.ConditionKubeconfigReady, metav1.ConditionTrue, v1alpha1.ReasonReady,
		fmt.Sprintf("Secret %s holds the admin kubeconfig (key %q)", vc.Status.KubeconfigSecretName, KubeconfigKey))
}

// setSyncingUnknown initialises the syncer's condition so it is never
// missing; the syncer owns it from then on.
func setSyncingUnknown(vc *v1alpha1.VirtualCluster) {
	if meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionSyncing) == nil {
		setCondition(vc, v1alpha1.ConditionSyncing, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing,
			"no syncer has picked this virtual cluster up yet")
	}
}

// setDeleting records a VirtualCluster on its way out; message says what
// the cleanup waits for.
func setDeleting(vc *v1alpha1.VirtualCluster, message string) {
	setCondition(vc, v1alpha1.ConditionControlPlaneReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, message)
	setCondition(vc, v1alpha1.ConditionKubeconfigReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, message)
}

// failedReasons need a fix from outside; they make the phase Failed rather
// than Pending or Provisioning (they are still retried). A transient failure
// of a step of these reasons gets them only when it ends a running tenant's
// grace (graced); before the tenant first runs it is Retrying.
var failedReasons = map[string]bool{
	v1alpha1.ReasonCredentialsInvalid: true,
	v1alpha1.ReasonPKIFailed:          true,
	v1alpha1.ReasonProvisionFailed:    true,
}

// computePhase summarises the conditions. Deleting is Terminating also
// before vc's own deletion: its namespace is being deleted (namespaceDeleted).
func computePhase(vc *v1alpha1.VirtualCluster) v1alpha1.VirtualClusterPhase {
	if !vc.DeletionTimestamp.IsZero() {
		return v1alpha1.PhaseTerminating
	}
	cp := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
	kc := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionKubeconfigReady)
	switch {
	case cp == nil:
		return v1alpha1.PhasePending
	case cp.Status == metav1.ConditionTrue && kc != nil && kc.Status == metav1.ConditionTrue:
		return v1alpha1.PhaseRunning
	case cp.Status == metav1.ConditionTrue:
		if kc != nil && kc.Reason == v1alpha1.ReasonKubeconfigWriteFailed {
			return v1alpha1.PhaseFailed
		}
		return v1alpha1.PhaseProvisioning
	case cp.Reason == v1alpha1.ReasonDeleting:
		return v1alpha1.PhaseTerminating
	case failedReasons[cp.Reason]:
		return v1alpha1.PhaseFailed
	case cp.Reason == v1alpha1.ReasonStorageUnavailable:
		return v1alpha1.PhasePending
	}
	return v1alpha1.PhaseProvisioning
}
