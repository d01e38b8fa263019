package kubeletproxy

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTranslate(t *testing.T) {
	q := func(s string) url.Values {
		v, err := url.ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := map[string]struct {
		method, path, query string
		want                request
		wantCode            int
	}{
		// The query kube-apiserver's LogLocation builds for `kubectl logs -f --tail=5 --timestamps
		// --since=1h --previous --limit-bytes=100 -c app`.
		"logs, every option": {
			method: "GET", path: "/containerLogs/default/web/app",
			query: "follow=true&previous=true&timestamps=true&sinceSeconds=3600&tailLines=5&limitBytes=100",
			want: request{Subresource: "log", Namespace: "default", Pod: "web",
				Params: q("container=app&follow=true&previous=true&timestamps=true&sinceSeconds=3600&tailLines=5&limitBytes=100")},
		},
		"logs, sinceTime": {
			method: "GET", path: "/containerLogs/ns/p/c", query: "sinceTime=2026-01-02T03:04:05Z",
			want: request{Subresource: "log", Namespace: "ns", Pod: "p", Params: q("container=c&sinceTime=2026-01-02T03:04:05Z")},
		},
		"logs, legacy tail": {
			method: "GET", path: "/containerLogs/ns/p/c", query: "tail=7",
			want: request{Subresource: "log", Namespace: "ns", Pod: "p", Params: q("container=c&tailLines=7")},
		},
		"logs, tail=all is no tail": {
			method: "GET", path: "/containerLogs/ns/p/c", query: "tail=all",
			want: request{Subresource: "log", Namespace: "ns", Pod: "p", Params: q("container=c")},
		},
		"logs never skip the super kubelet's TLS check": {
			method: "GET", path: "/containerLogs/ns/p/c", query: "insecureSkipTLSVerifyBackend=true",
			want: request{Subresource: "log", Namespace: "ns", Pod: "p", Params: q("container=c")},
		},
		"logs, bad tailLines":      {method: "GET", path: "/containerLogs/ns/p/c", query: "tailLines=many", wantCode: http.StatusBadRequest},
		"logs, POST":               {method: "POST", path: "/containerLogs/ns/p/c", wantCode: http.StatusMethodNotAllowed},
		"logs without a container": {method: "GET", path: "/containerLogs/ns/p", wantCode: http.StatusNotFound},

		// streamParams in pkg/registry/core/pod: `echo hi | kubectl exec -i p -c app -- cat -n`.
		"exec with stdin": {
			method: "POST", path: "/exec/ns/p/app", query: "command=cat&command=-n&input=1&output=1&error=1",
			want: request{Subresource: "exec", Namespace: "ns", Pod: "p", Streaming: true,
				Params: q("container=app&command=cat&command=-n&stdin=true&stdout=true&stderr=true")},
		},
		"exec with a tty, pod UID in the path": {
			method: "GET", path: "/exec/ns/p/uid-1/app", query: "command=sh&input=1&output=1&tty=1",
			want: request{Subresource: "exec", Namespace: "ns", Pod: "p", UID: "uid-1", Streaming: true,
				Params: q("container=app&command=sh&stdin=true&stdout=true&tty=true")},
		},
		"exec without a command": {method: "POST", path: "/exec/ns/p/app", query: "output=1", wantCode: http.StatusBadRequest},
		"exec, PUT":              {method: "PUT", path: "/exec/ns/p/app", query: "command=sh", wantCode: http.StatusMethodNotAllowed},
		"attach": {
			method: "POST", path: "/attach/ns/p/app", query: "input=1&output=1&tty=1",
			want: request{Subresource: "attach", Namespace: "ns", Pod: "p", Streaming: true,
				Params: q("container=app&stdin=true&stdout=true&tty=true")},
		},
		"attach, values other than 1 are off": {
			method: "POST", path: "/attach/ns/p/app", query: "input=true&output=1",
			want: request{Subresource: "attach", Namespace: "ns", Pod: "p", Streaming: true,
				Params: q("container=app&stdout=true")},
		},
		"port-forward": {
			method: "POST", path: "/portForward/ns/p", query: "port=8080,9090",
			want: request{Subresource: "portforward", Namespace: "ns", Pod: "p", Streaming: true,
				Params: q("ports=8080&ports=9090")},
		},
		"port-forward, SPDY names ports per stream": {
			method: "GET", path: "/portForward/ns/p/uid-2",
			want: request{Subresource: "portforward", Namespace: "ns", Pod: "p", UID: "uid-2", Streaming: true, Params: url.Values{}},
		},
		"port-forward, bad port": {method: "POST", path: "/portForward/ns/p", query: "port=70000", wantCode: http.StatusBadRequest},

		"stats are the super node's":   {method: "GET", path: "/stats/summary", wantCode: http.StatusNotFound},
		"metrics are the super node's": {method: "GET", path: "/metrics/cadvisor", wantCode: http.StatusNotFound},
		"run is not served":            {method: "POST", path: "/run/ns/p/c", query: "cmd=ls", wantCode: http.StatusNotFound},
		"pods are not listed":          {method: "GET", path: "/pods", wantCode: http.StatusNotFound},
		"empty segment":                {method: "GET", path: "/containerLogs/ns//c", wantCode: http.StatusNotFound},
		"root":                         {method: "GET", path: "/", wantCode: http.StatusNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := translate(tc.method, tc.path, q(tc.query))
			if tc.wantCode != 0 {
				var se *statusError
				if !errors.As(err, &se) || se.code != tc.wantCode {
					t.Fatalf("error = %v, want HTTP %d", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("translate (-want +got):\n%s", diff)
			}
		})
	}
}
