package manager

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// clusterProvisioner runs each tenant control plane in the super cluster:
// a Deployment of the vnest image and a Service in the VirtualCluster's
// namespace, both owned by the VirtualCluster.
type clusterProvisioner struct {
	client client.Client
	// reader reads without the cache (pods are not cached).
	reader client.Reader
	scheme *runtime.Scheme
	image  string
	// command runs the image's control plane ("": the image's entrypoint).
	command string
	hostIP  net.IP
}

// Endpoint implements provisioner.
func (p *clusterProvisioner) Endpoint(ctx context.Context, vc *v1alpha1.VirtualCluster) (endpoint, error) {
	desired := buildService(vc)
	svc := &corev1.Service{ObjectMeta: desired.ObjectMeta}
	_, err := controllerutil.CreateOrUpdate(ctx, p.client, svc, func() error {
		svc.Labels = mergeLabels(svc.Labels, desired.Labels)
		svc.Spec.Type = desired.Spec.Type
		svc.Spec.Selector = desired.Spec.Selector
		ports := desired.Spec.Ports
		if desired.Spec.Type == corev1.ServiceTypeNodePort && len(svc.Spec.Ports) == 1 {
			ports[0].NodePort = svc.Spec.Ports[0].NodePort // keep the allocated port
		}
		svc.Spec.Ports = ports
		return controllerutil.SetControllerReference(vc, svc, p.scheme)
	})
	if err != nil {
		return endpoint{}, writeError(err, "applying", "Service "+svc.Namespace+"/"+svc.Name)
	}
	ep, ok := serviceEndpoint(svc, p.hostIP)
	if !ok {
		return endpoint{}, waitingFor(retryStarting, "waiting for Service %s/%s to get its address", svc.Namespace, svc.Name)
	}
	return ep, nil
}

// Ensure implements provisioner.
func (p *clusterProvisioner) Ensure(ctx context.Context, t tenant) (bool, error) {
	desired := buildDeployment(t, p.image, p.command, p.hostIP)
	d := &appsv1.Deployment{ObjectMeta: desired.ObjectMeta}
	d.Annotations = nil
	_, err := controllerutil.CreateOrUpdate(ctx, p.client, d, func() error {
		d.Labels = mergeLabels(d.Labels, desired.Labels)
		if d.Annotations[annotationTemplateHash] != desired.Annotations[annotationTemplateHash] {
			d.Annotations = mergeLabels(d.Annotations, desired.Annotations)
			d.Spec = desired.Spec
		}
		return controllerutil.SetControllerReference(t.VC, d, p.scheme)
	})
	if err != nil {
		return false, writeError(err, "applying", "Deployment "+d.Namespace+"/"+d.Name)
	}
	if why := podRefused(d); why != "" {
		return false, failure(v1alpha1.ReasonProvisionFailed,
			"the super cluster refuses the control plane's pod of Deployment %s/%s (tried again every %s; it needs a change of the "+
				"VirtualCluster's spec, the manager's flags, or the namespace's quota or policies): %s", d.Namespace, d.Name, retryFailure, why)
	}
	return rollingOut(d), nil
}

// podRefused is the message of d's ReplicaFailure condition (its
// ReplicaSet's pod was refused: over a ResourceQuota, against the
// namespace's PodSecurity level, by a webhook) when d has no ready pod,
// else "". Its Deployment is accepted, so without it the control plane
// would wait as if starting, for ever. A refused rollout whose old pod
// still serves is left to the health check.
func podRefused(d *appsv1.Deployment) string {
	if d.Status.ReadyReplicas > 0 {
		return ""
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return c.Message
		}
	}
	return ""
}

// rollingOut reports a Deployment whose pod is not (yet) the ready one of
// the current spec.
func rollingOut(d *appsv1.Deployment) bool {
	st := d.Status
	return st.ObservedGeneration < d.Generation || st.UpdatedReplicas < 1 || st.ReadyReplicas < 1 || st.Replicas > st.UpdatedReplicas
}

// Diagnose implements diagnoser: the state of the control-plane pod.
func (p *clusterProvisioner) Diagnose(ctx context.Context, vc *v1alpha1.VirtualCluster) string {
	var pods corev1.PodList
	if err := p.reader.List(ctx, &pods, client.InNamespace(vc.Namespace), client.MatchingLabels(selectorLabels(vc))); err != nil {
		return "listing the control-plane pods: " + err.Error()
	}
	if len(pods.Items) == 0 {
		return fmt.Sprintf("Deployment %s/%s has no pod yet", vc.Namespace, ControlPlaneName(vc))
	}
	return describePods(pods.Items)
}

// maxDescribedPods is how many control-plane pods Diagnose describes: a
// Deployment of one replica has one or two that matter, and the pods its
// node evicted stay (Failed) until the pod garbage collector's threshold,
// thousands of them.
const maxDescribedPods = 3

// describePods describes the pods that matter most, those not terminated
// and then the newest, and counts the others.
func describePods(pods []corev1.Pod) string {
	pods = slices.Clone(pods)
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int {
		if ta, tb := terminated(&a), terminated(&b); ta != tb {
			if ta {
				return 1
			}
			return -1
		}
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	var out []string
	for i := range pods[:min(len(pods), maxDescribedPods)] {
		out = append(out, describePod(&pods[i]))
	}
	if more := len(pods) - maxDescribedPods; more > 0 {
		out = append(out, fmt.Sprintf("and %d more pods of it", more))
	}
	return strings.Join(out, "; ")
}

// terminated reports a pod that has ended (evicted, say) and runs nothing.
func terminated(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// describePod says in one line why a control-plane pod is not serving.
func describePod(pod *corev1.Pod) string {
	s := fmt.Sprintf("pod %s is %s", pod.Name, pod.Status.Phase)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return s + ", not scheduled: " + c.Message
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(", container %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Running != nil && !cs.Ready:
			s += fmt.Sprintf(", container %s running, not ready", cs.Name)
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			s += fmt.Sprintf(" (last exit %d: %s %s)", t.ExitCode, t.Reason, strings.TrimSpace(t.Message))
		}
	}
	return s
}

// Teardown implements provisioner: the Deployment goes in the foreground,
// so it is gone only once its pods are, and no apiserver writes into the
// tenant's etcd prefix after the caller deletes it. Only vc's own
// Deployment and Service are deleted (ownsObject, and a UID precondition
// in case one was replaced since it was read): a user's object that merely
// has the name is left alone and counts as gone, so it never blocks the
// deletion.
func (p *clusterProvisioner) Teardown(ctx context.Context, vc *v1alpha1.VirtualCluster) (bool, error) {
	key := client.ObjectKey{Namespace: vc.Namespace, Name: ControlPlaneName(vc)}
	done := true
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
		gone, err := deleteOwned(ctx, p.reader, p.client, vc, key, obj, client.PropagationPolicy(metav1.DeletePropagationForeground))
		if err != nil {
			return false, err
		}
		done = done && gone
	}
	return done, nil
}

// mergeLabels returns have with every entry of want set.
func mergeLabels(have, want map[string]string) map[string]string {
	if have == nil {
		have = map[string]string{}
	}
	maps.Copy(have, want)
	return have
}
