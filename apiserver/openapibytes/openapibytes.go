package openapibytes

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/NYTimes/gziphandler"
	restful "github.com/emicklei/go-restful/v3"
	"github.com/munnerz/goautoneg"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/routes"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/handler3"
)

// Paths and media types, as upstream's handlers (k8s.io/kube-openapi/pkg/handler and handler3) serve them.
const (
	v2Path = "/openapi/v2"
	v3Path = "/openapi/v3"

	mediaJSON            = "application/json"
	protobufV2           = "com.github.proto-openapi.spec.v2.v1.0+protobuf"
	protobufV2Deprecated = "com.github.proto-openapi.spec.v2@v1.0+protobuf"
	protobufV3           = "com.github.proto-openapi.spec.v3.v1.0+protobuf"
	protobufV3Deprecated = "com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// InstallV2 builds the OpenAPI v2 document of the web services in c as upstream's
// routes.OpenAPI.InstallV2 does and serves it on m at /openapi/v2 from its bytes.
func InstallV2(c *restful.Container, m *mux.PathRecorderMux, config *common.Config) error {
	built := mux.NewPathRecorderMux("openapi-v2")
	routes.OpenAPI{Config: config}.InstallV2(c, built)
	doc, err := readDocument(built, v2Path, handler.ToProtoBinary)
	if err != nil {
		return fmt.Errorf("OpenAPI v2: %w", err)
	}
	m.Handle(v2Path, gziphandler.GzipHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc.serve(w, r, protobufV2, protobufV2Deprecated, nil)
	})))
	return nil
}

// InstallV3 builds the OpenAPI v3 documents of the web services in c, one per group version, as
// upstream's routes.OpenAPI.InstallV3 does and serves them on m from their bytes: the discovery
// document at /openapi/v3, each group version's at /openapi/v3/<group-version>.
func InstallV3(c *restful.Container, m *mux.PathRecorderMux, config *common.OpenAPIV3Config) error {
	built := mux.NewPathRecorderMux("openapi-v3")
	routes.OpenAPI{V3Config: config}.InstallV3(c, built)
	discovery, discoveryETag, err := read(built, v3Path)
	if err != nil {
		return fmt.Errorf("OpenAPI v3 discovery: %w", err)
	}
	discoveryModified := time.Now()
	var paths handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(discovery, &paths); err != nil {
		return fmt.Errorf("OpenAPI v3 discovery: %w", err)
	}
	groups := make(map[string]*document, len(paths.Paths))
	for gv := range paths.Paths {
		if groups[gv], err = readDocument(built, v3Path+"/"+gv, handler3.ToV3ProtoBinary); err != nil {
			return fmt.Errorf("OpenAPI v3 of %s: %w", gv, err)
		}
	}
	m.Handle(v3Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", strconv.Quote(discoveryETag))
		w.Header().Set("Content-Type", mediaJSON)
		http.ServeContent(w, r, v3Path, discoveryModified, bytes.NewReader(discovery))
	}))
	m.HandlePrefix(v3Path+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gv := strings.TrimPrefix(r.URL.Path, v3Path+"/")
		doc, ok := groups[gv]
		if !ok {
			http.NotFound(w, r)
			return
		}
		doc.serve(w, r, protobufV3, protobufV3Deprecated, func() bool {
			hash := r.URL.Query().Get("hash")
			if hash == "" {
				return false
			}
			if hash != doc.etag {
				http.Redirect(w, r, groupVersionURL(gv, doc.etag), http.StatusMovedPermanently)
				return true
			}
			// A document named by its hash never changes.
			w.Header().Set("Cache-Control", "public, immutable")
			w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).Format(time.RFC1123))
			return false
		})
	}))
	return nil
}

// groupVersionURL is where the v3 document of gv with ETag etag is, as the discovery document names it.
func groupVersionURL(gv, etag string) string {
	u := url.URL{Path: path.Join(v3Path, gv), RawQuery: url.Values{"hash": {etag}}.Encode()}
	return u.String()
}

// document is one OpenAPI document as upstream serves it: its JSON, the JSON's ETag, and the
// protobuf form, made from the JSON on the first request for it. Both forms are kept
// gzip-compressed and unpacked for each response that carries them.
type document struct {
	packedJSON   []byte
	etag         string // unquoted
	lastModified time.Time
	toProto      func([]byte) ([]byte, error)

	protoOnce   sync.Once
	packedProto []byte
	protoErr    error
}

// unpacks counts the responses that unpacked a document, for tests.
var unpacks atomic.Int64

// lazyContent is a document's body for http.ServeContent, unpacked on the first Seek or Read:
// a conditional request that ServeContent answers with 304 Not Modified (the aggregator's
// requests for the v2 document, clients' for v3 documents they have) does neither.
type lazyContent struct {
	unpack func() ([]byte, error)
	r      *bytes.Reader
}

func (c *lazyContent) load() error {
	if c.r != nil {
		return nil
	}
	b, err := c.unpack()
	if err != nil {
		return err
	}
	c.r = bytes.NewReader(b)
	return nil
}

func (c *lazyContent) Read(p []byte) (int, error) {
	if err := c.load(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c *lazyContent) Seek(offset int64, whence int) (int64, error) {
	if err := c.load(); err != nil {
		return 0, err
	}
	return c.r.Seek(offset, whence)
}

// read GETs p from h as JSON, as a client of upstream's handler would, and returns the body and its ETag.
func read(h http.Handler, p string) ([]byte, string, error) {
	req := httptest.NewRequest(http.MethodGet, p, nil)
	req.Header.Set("Accept", mediaJSON)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %d %s", p, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	etag, err := strconv.Unquote(rec.Header().Get("Etag"))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: ETag %q: %w", p, rec.Header().Get("Etag"), err)
	}
	return rec.Body.Bytes(), etag, nil
}

// readDocument reads the document at p of h (read) and packs it.
func readDocument(h http.Handler, p string, toProto func([]byte) ([]byte, error)) (*document, error) {
	body, etag, err := read(h, p)
	if err != nil {
		return nil, err
	}
	packed, err := pack(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	return &document{packedJSON: packed, etag: etag, lastModified: time.Now(), toProto: toProto}, nil
}

// json is the document as JSON.
func (d *document) json() ([]byte, error) { return unpack(d.packedJSON) }

// protobuf is the document as protobuf.
func (d *document) protobuf() ([]byte, error) {
	d.protoOnce.Do(func() {
		var js, proto []byte
		if js, d.protoErr = d.json(); d.protoErr != nil {
			return
		}
		if proto, d.protoErr = d.toProto(js); d.protoErr != nil {
			return
		}
		d.packedProto, d.protoErr = pack(proto)
	})
	if d.protoErr != nil {
		return nil, d.protoErr
	}
	return unpack(d.packedProto)
}

// pack compresses b.
func pack(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(out.Bytes()), nil
}

// unpack is what pack was given.
func unpack(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// serve writes the document in the first media type of the request's Accept header that it
// has: JSON, or protobuf (subtype proto, or its deprecated name deprecated); 406 if none.
// redirected, when not nil, runs once the media type's headers are set and returns whether it
// has answered the request instead (v3's hash check).
func (d *document) serve(w http.ResponseWriter, r *http.Request, proto, deprecated string, redirected func() bool) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	w.Header().Add("Vary", "Accept")
	for _, clause := range goautoneg.ParseAccept(accept) {
		if clause.Type != "application" && clause.Type != "*" {
			continue
		}
		var body func() ([]byte, error)
		contentType := mediaJSON
		switch clause.SubType {
		case "json", "*":
			body = d.json
		case proto, deprecated:
			body, contentType = d.protobuf, "application/"+proto
		default:
			continue
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Etag", strconv.Quote(d.etag))
		if redirected != nil && redirected() {
			return
		}
		http.ServeContent(w, r, "", d.lastModified, &lazyContent{unpack: func() ([]byte, error) {
			unpacks.Add(1)
			b, err := body()
			if err != nil {
				klog.ErrorS(err, "Serving OpenAPI", "path", r.URL.Path, "contentType", contentType)
			}
			return b, err
		}})
		return
	}
	w.WriteHeader(http.StatusNotAcceptable)
}

// DetachBuilders gives the OpenAPI configs of a server the route form of their operation IDs
// (GetOperationIDAndTagsFromRoute) before any of kube-openapi's builders is made from them.
// Each builder, v2 and v3, sets it on its first use with a closure that refers to the builder
// itself: the config, which the server keeps, then holds that first builder for good, with its
// definitions of every API type and the document it built. The function set here is the
// one that closure would be, without the builder. Either config may be nil.
func DetachBuilders(v2 *common.Config, v3 *common.OpenAPIV3Config) {
	if v2 != nil && v2.GetOperationIDAndTagsFromRoute == nil {
		v2.GetOperationIDAndTagsFromRoute = fromRoute(v2.GetOperationIDAndTags)
	}
	if v3 != nil && v3.GetOperationIDAndTagsFromRoute == nil {
		v3.GetOperationIDAndTagsFromRoute = fromRoute(v3.GetOperationIDAndTags)
	}
}

// fromRoute is what kube-openapi's builders make of a config's GetOperationIDAndTags: it for a
// go-restful route, and the route's operation name without one.
func fromRoute(get func(*restful.Route) (string, []string, error)) func(common.Route) (string, []string, error) {
	if get == nil {
		return func(r common.Route) (string, []string, error) { return r.OperationName(), nil, nil }
	}
	return func(r common.Route) (string, []string, error) {
		route, ok := r.(*restfuladapter.RouteAdapter)
		if !ok {
			return "", nil, fmt.Errorf("config.GetOperationIDAndTags specified but route is not a restful v1 Route")
		}
		return get(route.Route)
	}
}

// ReleaseDefinitions drops the definitions of every API type that upstream's default v3 config
// keeps (genericapiserver.DefaultOpenAPIV3Config computes them once, for its builders), when
// the config can compute them again: call it once the server's documents are built. A builder
// made from the config later computes them for itself (GetDefinitions), as it would without them.
func ReleaseDefinitions(v3 *common.OpenAPIV3Config) {
	if v3 != nil && v3.GetDefinitions != nil {
		v3.Definitions = nil
	}
}
