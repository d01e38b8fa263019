package serviceipadmission

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/storage/names"
	api "k8s.io/kubernetes/pkg/apis/core"
	apiv1 "k8s.io/kubernetes/pkg/apis/core/v1"

	"github.com/vnest-dev/vnest/internal/serviceip"
)

// PluginName is the plugin's name in the admission chain.
const PluginName = "VnestServiceIP"

// requestTimeout bounds one call to the allocator; a Service create waits for it.
const requestTimeout = 10 * time.Second

// defaultRetryFor is how long an allocator that is not (yet) serving this tenant is retried;
// retryInterval is the pause between tries.
const (
	defaultRetryFor = 10 * time.Second
	retryInterval   = 500 * time.Millisecond
)

// Config is where the allocator is and how to authenticate to it.
type Config struct {
	// URL is the allocator endpoint, like https://10.0.0.5:10250/vnest/v1/allocate-service-ip.
	URL string
	// CertFile and KeyFile are the client certificate (the apiserver's kubelet client
	// certificate, which the syncer identifies tenants by).
	CertFile, KeyFile string
}

// Register adds the plugin, configured with c, to plugins.
func Register(plugins *admission.Plugins, c Config) {
	plugins.Register(PluginName, func(io.Reader) (admission.Interface, error) { return New(c) })
}

// Plugin is the admission step. Make it with New.
type Plugin struct {
	*admission.Handler
	url      string
	client   *http.Client
	retryFor time.Duration
}

var _ admission.MutationInterface = (*Plugin)(nil)

// New loads the client certificate and returns the plugin.
func New(c Config) (*Plugin, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: client certificate: %w", PluginName, err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert},
		// The allocator's certificate is self-signed at its start and not verified, as kubelets'
		// are not (see the package doc).
		InsecureSkipVerify: true, //nolint:gosec
		MinVersion:         tls.VersionTLS12,
	}}
	return &Plugin{
		Handler:  admission.NewHandler(admission.Create, admission.Update),
		url:      c.URL,
		client:   &http.Client{Transport: tr, Timeout: requestTimeout},
		retryFor: defaultRetryFor,
	}, nil
}

// Admit asks the allocator for the cluster IPs of a Service that needs new ones.
func (p *Plugin) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != api.Resource("services") || a.GetSubresource() != "" || a.IsDryRun() {
		return nil
	}
	svc, ok := a.GetObject().(*api.Service)
	if !ok {
		return nil
	}
	var old *api.Service
	if a.GetOperation() == admission.Update {
		if old, ok = a.GetOldObject().(*api.Service); !ok {
			return nil
		}
	}
	if !wantsAllocation(a.GetNamespace(), svc, old) {
		return nil
	}
	if svc.Name == "" && svc.GenerateName != "" {
		// The registry generates the name only after admission, but the allocator needs it
		// now; a name set here is kept (and a clash is an AlreadyExists, as a rare one of
		// generated names is anyway).
		svc.Name = names.SimpleNameGenerator.GenerateName(svc.GenerateName)
	}
	req := serviceip.Request{}
	if err := apiv1.Convert_core_Service_To_v1_Service(svc, &req.Service, nil); err != nil {
		return apierrors.NewInternalError(err)
	}
	req.Service.Namespace = a.GetNamespace()
	if old != nil {
		req.UID = old.UID
	}
	resp, err := p.allocate(ctx, req)
	if err != nil {
		return err
	}
	return apply(svc, resp)
}

// wantsAllocation reports whether svc takes cluster IPs from the allocator: on create (old nil)
// when it needs some, on update when an ExternalName Service becomes one that needs some and
// the user did not pick them. The tenant's default/kubernetes Service is never asked for.
func wantsAllocation(ns string, svc, old *api.Service) bool {
	if ns == metav1.NamespaceDefault && svc.Name == "kubernetes" {
		return false
	}
	if svc.Spec.Type == api.ServiceTypeExternalName || svc.Spec.ClusterIP == api.ClusterIPNone {
		return false
	}
	if old == nil {
		return true
	}
	return len(old.Spec.ClusterIPs) == 0 && old.Spec.ClusterIP == "" && svc.Spec.ClusterIP == ""
}

// apply sets the allocated cluster IPs, families and policy on svc, and the super node ports on
// the ports that have none yet (a Service without node ports ignores them).
func apply(svc *api.Service, resp serviceip.Response) error {
	if len(resp.ClusterIPs) == 0 {
		return apierrors.NewInternalError(errors.New("the Service IP allocator answered no cluster IPs"))
	}
	svc.Spec.ClusterIP = resp.ClusterIPs[0]
	svc.Spec.ClusterIPs = append([]string(nil), resp.ClusterIPs...)
	if len(resp.IPFamilies) > 0 {
		svc.Spec.IPFamilies = nil
		for _, f := range resp.IPFamilies {
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, api.IPFamily(f))
		}
	}
	if resp.IPFamilyPolicy != nil {
		policy := api.IPFamilyPolicy(*resp.IPFamilyPolicy)
		svc.Spec.IPFamilyPolicy = &policy
	}
	if svc.Spec.Type == api.ServiceTypeNodePort || svc.Spec.Type == api.ServiceTypeLoadBalancer {
		for i, np := range resp.NodePorts {
			if i < len(svc.Spec.Ports) && svc.Spec.Ports[i].NodePort == 0 {
				svc.Spec.Ports[i].NodePort = np
			}
		}
	}
	return nil
}

// allocate posts req and decodes the answer; an unreachable allocator is a 503, an error it
// answers keeps its code and message. A syncer that has just started, or has not picked up
// this tenant yet, answers 503 or 403 (its kubelet proxy knows no tenant of this certificate
// yet) or is not listening: those are retried for up to retryFor.
func (p *Plugin) allocate(ctx context.Context, req serviceip.Request) (serviceip.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return serviceip.Response{}, apierrors.NewInternalError(err)
	}
	deadline := time.Now().Add(p.retryFor)
	for {
		resp, err := p.post(ctx, body)
		code := 0
		if api := apierrors.APIStatus(nil); errors.As(err, &api) {
			code = int(api.Status().Code)
		}
		if err == nil || (code != http.StatusServiceUnavailable && code != http.StatusForbidden) || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(retryInterval):
		}
	}
}

func (p *Plugin) post(ctx context.Context, body []byte) (serviceip.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return serviceip.Response{}, apierrors.NewInternalError(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := p.client.Do(hreq)
	if err != nil {
		return serviceip.Response{}, unreachable(p.url, err)
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, 1<<20))
	if err != nil {
		return serviceip.Response{}, unreachable(p.url, err)
	}
	return decode(hresp.StatusCode, data)
}

func unreachable(url string, err error) error {
	return apierrors.NewServiceUnavailable(fmt.Sprintf(
		"vnest: the Service IP allocator (the syncer, %s) is unreachable, and a Service may only take a cluster IP the super cluster allocated: %v", url, err))
}

// decode reads the allocator's answer: a Response on 200, a metav1.Status otherwise.
func decode(code int, data []byte) (serviceip.Response, error) {
	if code == http.StatusOK {
		var resp serviceip.Response
		if err := json.Unmarshal(data, &resp); err != nil {
			return resp, apierrors.NewInternalError(fmt.Errorf("decoding the Service IP allocator's answer: %w", err))
		}
		return resp, nil
	}
	var st metav1.Status
	if err := json.Unmarshal(data, &st); err != nil || st.Message == "" {
		st = metav1.Status{Code: int32(code), Reason: metav1.StatusReasonUnknown, Message: http.StatusText(code) + ": " + string(bytes.TrimSpace(data))}
	}
	st.Status = metav1.StatusFailure
	st.Code = int32(code)
	st.Message = "vnest Service IP allocator: " + st.Message
	return serviceip.Response{}, &apierrors.StatusError{ErrStatus: st}
}
