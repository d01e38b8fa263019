package kubeletproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusError is an error with the HTTP status the proxy answers it with.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func newStatusError(code int, format string, a ...any) error {
	return &statusError{code: code, msg: fmt.Sprintf(format, a...)}
}

func badRequest(format string, a ...any) error {
	return newStatusError(http.StatusBadRequest, format, a...)
}
func unauthorized(format string, a ...any) error {
	return newStatusError(http.StatusUnauthorized, format, a...)
}
func forbidden(format string, a ...any) error {
	return newStatusError(http.StatusForbidden, format, a...)
}
func notFound(format string, a ...any) error {
	return newStatusError(http.StatusNotFound, format, a...)
}
func tooManyRequests(format string, a ...any) error {
	return newStatusError(http.StatusTooManyRequests, format, a...)
}

// codeOf is the HTTP status for err: its own, the one of an API error, or 502 for anything
// else (the proxy failed to reach the super apiserver).
func codeOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	var api apierrors.APIStatus
	if errors.As(err, &api) && api.Status().Code != 0 {
		return int(api.Status().Code)
	}
	return http.StatusBadGateway
}

// writeError answers err. kube-apiserver reads the answer differently per subresource: for logs
// it takes a plain-text body as the message (pods/log's response checker); a streaming client
// (SPDY or WebSocket) decodes a metav1.Status into an API error. So streaming errors go out
// as a Status, the others as text.
func writeError(w http.ResponseWriter, err error, asStatus bool) {
	code := codeOf(err)
	msg := "vnest kubelet proxy: " + err.Error()
	if !asStatus {
		http.Error(w, msg, code)
		return
	}
	body, _ := json.Marshal(&metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Message: msg, Reason: reasonFor(code),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusUnauthorized:
		return metav1.StatusReasonUnauthorized
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusTooManyRequests:
		return metav1.StatusReasonTooManyRequests
	}
	return metav1.StatusReasonUnknown
}

// superError reads the error answer of the super apiserver: the message of its Status, or the
// body as text.
func superError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var status metav1.Status
	if json.Unmarshal(body, &status) == nil && status.Kind == "Status" && status.Message != "" {
		return &statusError{code: resp.StatusCode, msg: status.Message}
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &statusError{code: resp.StatusCode, msg: "super apiserver: " + msg}
}
