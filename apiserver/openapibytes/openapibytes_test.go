package openapibytes

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"weak"

	restful "github.com/emicklei/go-restful/v3"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/routes"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Widget is the type the test web services read and write.
type Widget struct {
	Name  string `json:"name"`
	Count int32  `json:"count"`
}

func (Widget) OpenAPIDefinition() common.OpenAPIDefinition {
	return common.OpenAPIDefinition{Schema: spec.Schema{SchemaProps: spec.SchemaProps{
		Description: "A widget.",
		Type:        []string{"object"},
		Properties: map[string]spec.Schema{
			"name":  {SchemaProps: spec.SchemaProps{Type: []string{"string"}, Description: "Its name."}},
			"count": {SchemaProps: spec.SchemaProps{Type: []string{"integer"}, Format: "int32"}},
		},
	}}}
}

// fixture is a container with a core-like and a group web service, and the OpenAPI configs for it.
func fixture() (*restful.Container, *common.Config, *common.OpenAPIV3Config) {
	c := restful.NewContainer()
	for i, root := range []string{"/api/v1", "/apis/example.com/v1"} {
		suffix := []string{"Core", "Example"}[i]
		ws := new(restful.WebService).Path(root).Produces(restful.MIME_JSON).Consumes(restful.MIME_JSON)
		ws.Route(ws.GET("/widgets/{name}").Operation("readWidget"+suffix).
			Param(ws.PathParameter("name", "name of the Widget")).
			Writes(Widget{}).Returns(http.StatusOK, "OK", Widget{}).
			To(func(*restful.Request, *restful.Response) {}))
		ws.Route(ws.POST("/widgets").Operation("createWidget"+suffix).
			Reads(Widget{}).Writes(Widget{}).Returns(http.StatusCreated, "Created", Widget{}).
			To(func(*restful.Request, *restful.Response) {}))
		c.Add(ws)
	}
	defs := func(common.ReferenceCallback) map[string]common.OpenAPIDefinition {
		return map[string]common.OpenAPIDefinition{
			"github.com/vnest-dev/vnest/apiserver/openapibytes.Widget": Widget{}.OpenAPIDefinition(),
		}
	}
	name := func(n string) (string, spec.Extensions) {
		return "dev.vnest.test." + n[strings.LastIndex(n, ".")+1:], nil
	}
	info := &spec.Info{InfoProps: spec.InfoProps{Title: "Test", Version: "v0"}}
	return c, &common.Config{Info: info, GetDefinitions: defs, GetDefinitionName: name},
		&common.OpenAPIV3Config{Info: info, GetDefinitions: defs, GetDefinitionName: name}
}

// response is what a test compares of an HTTP response; Last-Modified and Expires, which
// carry the time a document was made or served, only by their presence.
type response struct {
	Code                                            int
	ContentType, Etag, Vary, CacheControl, Location string
	Encoding                                        string
	HasLastModified, HasExpires                     bool
	Body                                            string
}

func get(h http.Handler, path string, header map[string]string) response {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	hd := rec.Header()
	return response{
		Code: rec.Code, ContentType: hd.Get("Content-Type"), Etag: hd.Get("Etag"), Vary: strings.Join(hd.Values("Vary"), ","),
		CacheControl: hd.Get("Cache-Control"), Location: hd.Get("Location"), Encoding: hd.Get("Content-Encoding"),
		HasLastModified: hd.Get("Last-Modified") != "", HasExpires: hd.Get("Expires") != "",
		Body: rec.Body.String(),
	}
}

// TestServedAsUpstream compares what InstallV2 and InstallV3 serve with what upstream's
// routes.OpenAPI serves for the same web services, request by request.
func TestServedAsUpstream(t *testing.T) {
	c, v2, v3 := fixture()
	upstream := mux.NewPathRecorderMux("upstream")
	routes.OpenAPI{Config: v2}.InstallV2(c, upstream)
	routes.OpenAPI{V3Config: v3}.InstallV3(c, upstream)
	ours := mux.NewPathRecorderMux("ours")
	if err := InstallV2(c, ours, v2); err != nil {
		t.Fatal(err)
	}
	if err := InstallV3(c, ours, v3); err != nil {
		t.Fatal(err)
	}

	v3Group := get(upstream, "/openapi/v3/apis/example.com/v1", nil)
	hash := strings.Trim(v3Group.Etag, `"`)
	v2Doc := get(upstream, "/openapi/v2", nil)
	for _, tc := range []struct {
		name, path string
		header     map[string]string
	}{
		{"v2 JSON", "/openapi/v2", map[string]string{"Accept": "application/json"}},
		{"v2 no Accept", "/openapi/v2", nil},
		{"v2 protobuf", "/openapi/v2", map[string]string{"Accept": "application/" + protobufV2}},
		{"v2 protobuf, deprecated name", "/openapi/v2", map[string]string{"Accept": "application/" + protobufV2Deprecated + ", application/json"}},
		{"v2 protobuf preferred by q", "/openapi/v2", map[string]string{"Accept": "application/json;q=0.5, application/" + protobufV2}},
		{"v2 not acceptable", "/openapi/v2", map[string]string{"Accept": "text/html"}},
		{"v2 gzip", "/openapi/v2", map[string]string{"Accept-Encoding": "gzip"}},
		{"v2 unchanged", "/openapi/v2", map[string]string{"If-None-Match": v2Doc.Etag}},
		{"v3 discovery", "/openapi/v3", nil},
		{"v3 group JSON", "/openapi/v3/apis/example.com/v1", map[string]string{"Accept": "application/json"}},
		{"v3 core JSON", "/openapi/v3/api/v1", nil},
		{"v3 group protobuf", "/openapi/v3/apis/example.com/v1", map[string]string{"Accept": "application/" + protobufV3}},
		{"v3 group protobuf, deprecated name", "/openapi/v3/apis/example.com/v1", map[string]string{"Accept": "application/" + protobufV3Deprecated}},
		{"v3 group not acceptable", "/openapi/v3/apis/example.com/v1", map[string]string{"Accept": "text/html"}},
		{"v3 group by hash", "/openapi/v3/apis/example.com/v1?hash=" + hash, nil},
		{"v3 group by old hash", "/openapi/v3/apis/example.com/v1?hash=0123", nil},
		{"v3 group unchanged", "/openapi/v3/apis/example.com/v1", map[string]string{"If-None-Match": v3Group.Etag}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, got := get(upstream, tc.path, tc.header), get(ours, tc.path, tc.header)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET %s %v: served differently (-upstream +ours):\n%s", tc.path, tc.header, diff)
			}
			if want.Code == http.StatusOK && want.Body == "" {
				t.Errorf("GET %s %v: upstream served nothing", tc.path, tc.header)
			}
		})
	}

	t.Run("document content", func(t *testing.T) {
		for _, p := range []string{"/openapi/v2", "/openapi/v3/apis/example.com/v1"} {
			if body := get(ours, p, nil).Body; !strings.Contains(body, "dev.vnest.test.Widget") || !strings.Contains(body, "createWidget") {
				t.Errorf("GET %s: no Widget schema or operation in %.300s", p, body)
			}
		}
	})
	t.Run("unknown group version", func(t *testing.T) {
		if got := get(ours, "/openapi/v3/apis/other.example.com/v1", nil); got.Code != http.StatusNotFound {
			t.Errorf("GET of an unknown group version: %d, want 404", got.Code)
		}
	})
}

// TestBuildersNotKept checks that once InstallV2 and InstallV3 are done, nothing that lives on
// (the configs, the container, the handlers) holds the definitions the documents were built
// from: each GetDefinitions call of the fixture marks its definitions with a sentinel, which
// must be collectable while the configs and the mux are still in use.
func TestBuildersNotKept(t *testing.T) {
	type sentinel struct{ N [8]int64 }
	var made []weak.Pointer[sentinel]
	c, v2, v3 := fixture()
	defs := v2.GetDefinitions
	marked := func(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
		s := new(sentinel)
		made = append(made, weak.Make(s))
		out := defs(ref)
		for name, def := range out {
			def.Schema.Extensions = spec.Extensions{"x-vnest-test": s}
			out[name] = def
		}
		return out
	}
	v2.GetDefinitions, v3.GetDefinitions = marked, marked
	// As kube-apiserver's configs have them.
	opID := func(r *restful.Route) (string, []string, error) { return r.Operation, nil, nil }
	v2.GetOperationIDAndTags, v3.GetOperationIDAndTags = opID, opID

	DetachBuilders(v2, v3)
	m := mux.NewPathRecorderMux("ours")
	if err := InstallV2(c, m, v2); err != nil {
		t.Fatal(err)
	}
	if err := InstallV3(c, m, v3); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	if len(made) == 0 {
		t.Fatal("no definitions were made")
	}
	for i, w := range made {
		if w.Value() != nil {
			t.Errorf("the definitions of builder %d of %d are still held", i+1, len(made))
		}
	}
	if got := get(m, "/openapi/v3/apis/example.com/v1", nil); !strings.Contains(got.Body, "createWidgetExample") {
		t.Errorf("v3 document without its operation IDs: %.300s", got.Body)
	}
	runtime.KeepAlive(v2)
	runtime.KeepAlive(v3)
	runtime.KeepAlive(c)
}

// TestReleaseDefinitions checks that a v3 config whose definitions were released still builds
// the same documents: its builders compute the definitions again.
func TestReleaseDefinitions(t *testing.T) {
	c, _, v3 := fixture()
	v3.Definitions = v3.GetDefinitions(func(string) spec.Ref { return spec.Ref{} })
	kept := mux.NewPathRecorderMux("kept")
	if err := InstallV3(c, kept, v3); err != nil {
		t.Fatal(err)
	}
	ReleaseDefinitions(v3)
	if v3.Definitions != nil {
		t.Fatal("the definitions are still in the config")
	}
	released := mux.NewPathRecorderMux("released")
	if err := InstallV3(c, released, v3); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/openapi/v3", "/openapi/v3/apis/example.com/v1"} {
		if diff := cmp.Diff(get(kept, p, nil), get(released, p, nil)); diff != "" {
			t.Errorf("GET %s after the release (-before +after):\n%s", p, diff)
		}
	}
}

// TestNotModifiedNotUnpacked checks that a conditional request for a document the client has
// is answered without unpacking it, and that one for a changed document is not.
func TestNotModifiedNotUnpacked(t *testing.T) {
	c, v2, v3 := fixture()
	m := mux.NewPathRecorderMux("ours")
	if err := InstallV2(c, m, v2); err != nil {
		t.Fatal(err)
	}
	if err := InstallV3(c, m, v3); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/openapi/v2", "/openapi/v3/apis/example.com/v1"} {
		etag := get(m, p, nil).Etag
		before := unpacks.Load()
		if got := get(m, p, map[string]string{"If-None-Match": etag}); got.Code != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match its ETag: %d, want 304", p, got.Code)
		}
		if n := unpacks.Load() - before; n != 0 {
			t.Errorf("GET %s If-None-Match its ETag: unpacked %d times, want none", p, n)
		}
		if got := get(m, p, map[string]string{"If-None-Match": `"old"`}); got.Code != http.StatusOK || got.Body == "" {
			t.Errorf("GET %s If-None-Match another ETag: %d with %d bytes, want 200 and the document", p, got.Code, len(got.Body))
		}
		if n := unpacks.Load() - before; n != 1 {
			t.Errorf("GET %s: unpacked %d times for two requests, want once", p, n)
		}
	}
}
