package kubeletproxy

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// Subresources of a super pod the proxy reaches.
const (
	subresourceLog         = "log"
	subresourceExec        = "exec"
	subresourceAttach      = "attach"
	subresourcePortForward = "portforward"
)

// request is a kubelet API request translated into a request for a pod subresource of the
// super apiserver. Namespace and Pod are still the tenant's; the caller maps them.
type request struct {
	Subresource string
	Namespace   string
	Pod         string
	// UID is the pod UID some kubelet paths carry; empty when the path has none.
	UID types.UID
	// Params are the query parameters of the super apiserver's subresource.
	Params url.Values
	// Streaming requests (exec, attach, port-forward) must be upgraded to SPDY or WebSocket.
	Streaming bool
}

// translate maps a request of the kubelet API, as kube-apiserver sends it (see LogLocation,
// streamLocation and PortForwardLocation in k8s.io/kubernetes pkg/registry/core/pod), to the
// pod subresource of the super apiserver that does the same:
//
//	GET       /containerLogs/{ns}/{pod}/{container}   → pods/log
//	GET|POST  /exec/{ns}/{pod}[/{uid}]/{container}    → pods/exec
//	GET|POST  /attach/{ns}/{pod}[/{uid}]/{container}  → pods/attach
//	GET|POST  /portForward/{ns}/{pod}[/{uid}]         → pods/portforward
//
// The kubelet's query parameters are renamed to the apiserver's: input/output/error/tty=1 to
// stdin/stdout/stderr/tty=true, port to ports, the container from the path to container.
// Anything else of the kubelet API (stats, metrics, /run, /pods, ...) is not served: it would
// describe the super node, not the tenant.
func translate(method, path string, query url.Values) (request, error) {
	segments := strings.Split(strings.TrimPrefix(path, "/"), "/")
	rt, ok := routes[segments[0]]
	args := segments[1:]
	n := 2 // namespace, pod
	if rt.container {
		n++
	}
	if !ok || (len(args) != n && !(rt.uid && len(args) == n+1)) || slices.Contains(args, "") {
		return request{}, notFound("the kubelet proxy does not serve %s: only containerLogs, exec, attach and portForward of pods are proxied", path)
	}
	if !slices.Contains(rt.methods, method) {
		return request{}, newStatusError(http.StatusMethodNotAllowed, "method %s is not allowed on %s", method, path)
	}
	r := request{Subresource: rt.subresource, Namespace: args[0], Pod: args[1], Streaming: rt.streaming}
	if len(args) == n+1 {
		r.UID = types.UID(args[2])
	}
	container := ""
	if rt.container {
		container = args[len(args)-1]
	}
	var err error
	r.Params, err = rt.params(query, container)
	return r, err
}

// route is one path of the kubelet API the proxy serves: /<name>/{ns}/{pod}[/{uid}][/{container}].
type route struct {
	subresource string
	container   bool // the path ends with the container's name
	uid         bool // a form with the pod's UID after its name exists
	methods     []string
	streaming   bool
	params      func(query url.Values, container string) (url.Values, error)
}

var routes = map[string]route{
	"containerLogs": {subresource: subresourceLog, container: true, methods: []string{http.MethodGet}, params: logParams},
	"exec": {subresource: subresourceExec, container: true, uid: true, methods: []string{http.MethodGet, http.MethodPost},
		streaming: true, params: execParams},
	"attach": {subresource: subresourceAttach, container: true, uid: true, methods: []string{http.MethodGet, http.MethodPost},
		streaming: true, params: attachParams},
	"portForward": {subresource: subresourcePortForward, uid: true, methods: []string{http.MethodGet, http.MethodPost},
		streaming: true, params: portForwardParams},
}

// logParams reads the kubelet's log query (the names of PodLogOptions, plus the legacy "tail"),
// with the conversions kube-apiserver uses for query parameters (a boolean is true unless
// absent, "0" or "false"), and encodes it for pods/log.
func logParams(query url.Values, container string) (url.Values, error) {
	opts := &corev1.PodLogOptions{Container: container}
	flag := func(name string) bool {
		v, ok := query[name]
		return ok && len(v) > 0 && v[0] != "0" && !strings.EqualFold(v[0], "false")
	}
	opts.Follow, opts.Previous, opts.Timestamps = flag("follow"), flag("previous"), flag("timestamps")
	query = maps.Clone(query)                  // Set and Del replace slices; the caller's stay as they are
	if tail := query.Get("tail"); tail != "" { // as the kubelet: tail wins, "all" means none
		query.Set("tailLines", tail)
		if tail == "all" {
			query.Del("tailLines")
		}
	}
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"tailLines", &opts.TailLines}, {"sinceSeconds", &opts.SinceSeconds}, {"limitBytes", &opts.LimitBytes}} {
		v := query.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, badRequest("invalid log parameter %s=%q", p.name, v)
		}
		*p.dst = &n
	}
	if v := query.Get("sinceTime"); v != "" {
		var since metav1.Time
		if err := since.UnmarshalQueryParameter(v); err != nil {
			return nil, badRequest("invalid log parameter sinceTime=%q: %v", v, err)
		}
		opts.SinceTime = &since
	}
	if v := query.Get("stream"); v != "" {
		opts.Stream = &v
	}
	// insecureSkipTLSVerifyBackend is never taken from the caller: the super apiserver
	// verifies its kubelets.
	return encode(opts)
}

// on reports a stream parameter of the kubelet as the kubelet reads it: set only when "1".
func on(query url.Values, name string) bool { return query.Get(name) == "1" }

// execParams builds the query of pods/exec from the kubelet's.
func execParams(query url.Values, container string) (url.Values, error) {
	command := query[corev1.ExecCommandParam]
	if len(command) == 0 {
		return nil, badRequest("exec needs a command")
	}
	return encode(&corev1.PodExecOptions{
		Container: container, Command: command, Stdin: on(query, corev1.ExecStdinParam), Stdout: on(query, corev1.ExecStdoutParam),
		Stderr: on(query, corev1.ExecStderrParam), TTY: on(query, corev1.ExecTTYParam),
	})
}

// attachParams builds the query of pods/attach from the kubelet's.
func attachParams(query url.Values, container string) (url.Values, error) {
	return encode(&corev1.PodAttachOptions{
		Container: container, Stdin: on(query, corev1.ExecStdinParam), Stdout: on(query, corev1.ExecStdoutParam),
		Stderr: on(query, corev1.ExecStderrParam), TTY: on(query, corev1.ExecTTYParam),
	})
}

// portForwardParams turns the kubelet's port values ("8080,9090", possibly repeated) into
// pods/portforward's ports. SPDY clients name the ports per stream instead; then there are none.
func portForwardParams(query url.Values, _ string) (url.Values, error) {
	opts := &corev1.PodPortForwardOptions{}
	for _, v := range query[corev1.PortHeader] {
		for p := range strings.SplitSeq(v, ",") {
			port, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || port == 0 {
				return nil, badRequest("invalid port %q", p)
			}
			opts.Ports = append(opts.Ports, int32(port))
		}
	}
	return encode(opts)
}

func encode(opts runtime.Object) (url.Values, error) {
	v, err := scheme.ParameterCodec.EncodeParameters(opts, corev1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", opts, err)
	}
	return v, nil
}
