package syncer

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/vnest-dev/vnest/internal/textcut"
)

// Persistent sync errors.
//
// A sync that fails is retried with back-off (process, syncer.go) for as long as it fails. A
// refusal by the super cluster's admission or validation (superRefused) is told to the tenant
// with a SuperClusterRejected event where it happens; other failures, a plain admission error
// (500; PodTolerationRestriction's), a webhook's denial without a code (400), a webhook that is
// down (500), would leave the tenant object (a pod Pending) without a word. So when a key's sync
// has failed failuresBeforeEvent times in a row with such an error, the tenant object gets one
// SuperClusterError Warning event with the error.

// A failure of a write to the tenant (the up direction: a pod's binding and status, a Service's
// or claim's status, virtual Nodes, mirrors) is marked with inTenant. It is told with reason
// TenantWriteFailed, and also when it is a refusal (Forbidden, Invalid): the tenant's own
// admission (a webhook, a ValidatingAdmissionPolicy, a quota) refusing the syncer's write is
// something only the tenant can fix, and nothing else tells it.

// reasonSuperClusterError is the reason of the event on a tenant object whose sync keeps
// failing with an error of the super cluster.
const reasonSuperClusterError = "SuperClusterError"

// reasonTenantWriteFailed is the reason of the event on a tenant object whose sync keeps
// failing with an error of the tenant's apiserver, to a write of the syncer.
const reasonTenantWriteFailed = "TenantWriteFailed"

// tenantError is a failed request to the tenant's apiserver (inTenant).
type tenantError struct{ err error }

func (e *tenantError) Error() string { return e.err.Error() }
func (e *tenantError) Unwrap() error { return e.err }

// inTenant marks err, the failure of a request to the tenant's apiserver, as the tenant's; nil
// stays nil. apierrors' checks (IsConflict, IsNotFound…) see through the mark.
func inTenant(err error) error {
	if err == nil {
		return nil
	}
	return &tenantError{err: err}
}

// fromTenant reports whether err is the failure of a request to the tenant's apiserver.
func fromTenant(err error) bool {
	var te *tenantError
	return errors.As(err, &te)
}

// failuresBeforeEvent is the failure in a row of a key's sync (the fair queue's count of its
// retries, plus this one) that brings the event, once per streak. The back-off starts at 10 ms
// and doubles: the tenth failure comes about 5 s after the first, past a leader election or a
// restart of the super apiserver; the third would come after 30 ms.
const failuresBeforeEvent = 10

// maxErrorMessage is how much of an error's message the event carries: webhook messages can be
// long, and an event's message is for a human to read.
const maxErrorMessage = 512

// worthTelling reports whether err, a sync's failure, is one the tenant is told of when it
// persists: an API status, which an apiserver that answered sent (a tenant apiserver that is
// down answers nothing, and an event to it would fail too; a cancelled sync and the syncer's
// own waits, for a super object to go or a tenant ConfigMap to come, are no status either), and
// not one the syncer lives with (conflicts, objects gone or already there: caches that have not
// caught up) or one the tenant is told of otherwise (a refusal of the super cluster's, told with
// SuperClusterRejected; the tenant's own refusals are told here).
func worthTelling(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	if superRefused(err) && !fromTenant(err) {
		return false
	}
	return !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err)
}

// recordSyncError tells the tenant, with one event on key's tenant object, that the key's sync
// failed failures times in a row with err, if that is the failure that brings the event and err
// is worth telling. A tenant object no longer in the cache gets none.
func (s *Syncer) recordSyncError(t *tenant, key objKey, failures int, err error) {
	if failures != failuresBeforeEvent || t.recorder == nil || !worthTelling(err) {
		return
	}
	obj := t.object(key)
	if obj == nil {
		return
	}
	msg := textcut.Truncate(err.Error(), maxErrorMessage)
	if fromTenant(err) {
		t.recorder.Eventf(obj, corev1.EventTypeWarning, reasonTenantWriteFailed,
			"The syncer's write of the %s's state from the super cluster to this cluster failed %d times in a row; retrying with back-off: %s", key.Kind, failures, msg)
		return
	}
	t.recorder.Eventf(obj, corev1.EventTypeWarning, reasonSuperClusterError,
		"Syncing the %s with the super cluster failed %d times in a row; retrying with back-off: %s", key.Kind, failures, msg)
}

// object is key's object in tenant t's cache, or nil when it is not there or key's kind has no
// tenant cache (events synced up).
func (t *tenant) object(key objKey) runtime.Object {
	idx := t.index[key.Kind]
	if idx == nil {
		return nil
	}
	k := key.Name
	if key.Namespace != "" {
		k = key.Namespace + "/" + key.Name
	}
	obj, exists, err := idx.GetByKey(k)
	if err != nil || !exists {
		return nil
	}
	o, _ := obj.(runtime.Object)
	return o
}
