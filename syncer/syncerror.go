package syncer

import (
	"errors"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
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

// reasonSuperClusterError is the reason of the event on a tenant object whose sync keeps
// failing.
const reasonSuperClusterError = "SuperClusterError"

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
// caught up) or one the tenant is told of otherwise (superRefused: SuperClusterRejected).
func worthTelling(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	return !superRefused(err) && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err)
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
	t.recorder.Eventf(obj, corev1.EventTypeWarning, reasonSuperClusterError,
		"Syncing the %s with the super cluster failed %d times in a row; retrying with back-off: %s", key.Kind, failures, truncate(err.Error(), maxErrorMessage))
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

// truncate is s cut to at most n bytes, on a rune boundary, with "…" if cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
