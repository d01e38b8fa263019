package conformance

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	imageutils "k8s.io/kubernetes/test/utils/image"
)

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd4b5f2000)
	libcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4 (0x00007f2a1c0a0000)
	libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f2a1c080000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f2a1c2a0000)
`
	want := []string{"/lib/x86_64-linux-gnu/libcurl.so.4", "/lib/x86_64-linux-gnu/libz.so.1", "/lib64/ld-linux-x86-64.so.2"}
	if diff := cmp.Diff(want, parseLdd([]byte(out))); diff != "" {
		t.Errorf("parseLdd (-want +got):\n%s", diff)
	}
	if got := parseLdd([]byte("\tstatically linked\n")); len(got) != 0 {
		t.Errorf("parseLdd(static) = %v, want none", got)
	}
}

// TestSharedLibsRunsOnHost runs the binaries the agnhost image copies, from
// a directory holding only what the layer would hold, so a library ldd
// missed shows up here and not in a pod.
func TestSharedLibsRunsOnHost(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd")
	}
	l := &layer{}
	if err := l.binaryWithLibs(t.Context(), "bin/bash", "/bin/bash"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range l.files {
		names = append(names, f.name)
	}
	if !strings.Contains(strings.Join(names, " "), "libc.so.6") {
		t.Errorf("bash's layer files %v lack libc.so.6", names)
	}
}

func TestLayerWrite(t *testing.T) {
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &layer{}
	l.data("usr/share/b.txt", "b")
	l.symlink("bin/sh", "busybox")
	l.hostFile("a/f", src, 0o755)
	l.mkdirAll("tmp")
	var buf bytes.Buffer
	if err := l.write(&buf); err != nil {
		t.Fatal(err)
	}
	got := tarEntries(t, &buf)
	want := []tarEntry{
		{Name: "a/", Mode: 0o755}, {Name: "bin/", Mode: 0o755}, {Name: "tmp/", Mode: 0o1777},
		{Name: "usr/", Mode: 0o755}, {Name: "usr/share/", Mode: 0o755},
		{Name: "a/f", Data: "host", Mode: 0o755},
		{Name: "bin/sh", Link: "busybox", Mode: 0o777},
		{Name: "usr/share/b.txt", Data: "b", Mode: 0o644},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer tar (-want +got):\n%s", diff)
	}
}

// tarEntry is a tar header's name, link target and mode, with the content.
type tarEntry struct {
	Name, Link, Data string
	Mode             int64
}

func tarEntries(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var got []tarEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got = append(got, tarEntry{h.Name, h.Linkname, string(data), h.Mode})
	}
}

func TestGrpcAddress(t *testing.T) {
	toml := `version = 2
root = "/x"

[grpc]
  address = "/run/vnest/ab12cd34/containerd.sock"

[ttrpc]
  address = "/run/vnest/ab12cd34/containerd.sock.ttrpc"
`
	if got, want := grpcAddress([]byte(toml)), "/run/vnest/ab12cd34/containerd.sock"; got != want {
		t.Errorf("grpcAddress = %q, want %q", got, want)
	}
	if got := grpcAddress([]byte("[ttrpc]\n  address = \"/x\"\n")); got != "" {
		t.Errorf("grpcAddress without [grpc] = %q, want empty", got)
	}
}

func TestRepoListRenamesEveryRegistry(t *testing.T) {
	for _, line := range strings.Split(strings.TrimSpace(RepoList()), "\n") {
		if _, v, _ := strings.Cut(line, ": "); !strings.HasPrefix(v, Registry+"/") {
			t.Errorf("repo list line %q does not point below %s", line, Registry)
		}
	}
}

// TestImageRefsAreTheSuites checks the names and tags built here against
// the suite's own image list (test/utils/image, v1.36.3) under RepoList.
func TestImageRefsAreTheSuites(t *testing.T) {
	repoList := filepath.Join(t.TempDir(), "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(RepoList()), 0o644); err != nil {
		t.Fatal(err)
	}
	imageutils.Init(repoList)
	t.Cleanup(func() { imageutils.Init("") })
	for id, want := range map[imageutils.ImageID]string{
		imageutils.Agnhost:         agnhostRefs[0],
		imageutils.AgnhostPrev:     agnhostRefs[1],
		imageutils.GlibcDnsTesting: glibcDNSRef,
		imageutils.Kitten:          kittenRef,
		imageutils.Nautilus:        nautilusRef,
		imageutils.Nginx:           nginxRefs[0],
		imageutils.NginxNew:        nginxRefs[1],
		imageutils.BusyBox:         busyboxRef,
		imageutils.Pause:           pauseAlias,
		imageutils.Nonewprivs:      nonewprivsRef,
		imageutils.APIServer:       sampleAPIServerRef,
		imageutils.Etcd:            etcdRef,
	} {
		if got := imageutils.GetE2EImage(id); got != want {
			t.Errorf("the suite wants %s, vnest builds %s", got, want)
		}
	}
}

// fakeBinary is a host file standing in for a program.
func fakeBinary(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!"+name), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProgramImages(t *testing.T) {
	src := ImageSources{
		Nonewprivs: fakeBinary(t, "nnp"),
		SampleAPI:  fakeBinary(t, "sample-apiserver"),
		Etcd:       fakeBinary(t, "etcd"),
	}
	type image struct {
		Entrypoint, Cmd []string
		Files           []tarEntry // with content
	}
	want := map[string]image{
		nonewprivsRef: {Cmd: []string{"nnp"}, Files: []tarEntry{{Name: "usr/local/bin/nnp", Data: "#!nnp", Mode: 0o6755}}},
		sampleAPIServerRef: {Entrypoint: []string{"/sample-apiserver"},
			Files: []tarEntry{{Name: "sample-apiserver", Data: "#!sample-apiserver", Mode: 0o755}}},
		etcdRef: {Cmd: []string{"/usr/local/bin/etcd"}, Files: []tarEntry{{Name: "usr/local/bin/etcd", Data: "#!etcd", Mode: 0o755}}},
	}
	imgs, err := programImages(empty.Image, src)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]image{}
	for ref, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		g := image{Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd}
		for _, e := range tarEntries(t, mutate.Extract(img)) {
			if e.Data != "" { // not the directories
				g.Files = append(g.Files, e)
			}
		}
		got[ref] = g
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("program images (-want +got):\n%s", diff)
	}
}

// TestBuildImagesHoldsEveryImage builds the tarball from stand-in programs
// and the host's busybox and tools, and reads its tags back.
func TestBuildImagesHoldsEveryImage(t *testing.T) {
	for _, tool := range append([]string{"/bin/busybox", "/bin/bash"}, slices.Collect(maps.Values(hostTools))...) {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("host lacks %s (hack/install-conformance-deps.sh)", tool)
		}
	}
	kube, err := kubeModuleDir()
	if err != nil {
		t.Skip(err)
	}
	src := ImageSources{
		Agnhost:    fakeBinary(t, "agnhost"),
		Nonewprivs: fakeBinary(t, "nnp"),
		SampleAPI:  fakeBinary(t, "sample-apiserver"),
		Etcd:       fakeBinary(t, "etcd"),
		Busybox:    "/bin/busybox",
		KubeSource: kube,
	}
	p, err := BuildImages(t.Context(), t.TempDir(), src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m {
		got = append(got, d.RepoTags...)
	}
	want := append([]string{glibcDNSRef, kittenRef, nautilusRef, busyboxRef,
		nonewprivsRef, sampleAPIServerRef, etcdRef}, agnhostRefs...)
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tags in %s (-want +got):\n%s", p, diff)
	}
}

func TestValidateNeedsImageBinaries(t *testing.T) {
	f := fakeBinary(t, "any")
	o := Options{Kubeconfig: f, E2EBinary: f, Ginkgo: f, Parallel: 1, Containerd: "/run/containerd.sock",
		Images: ImageSources{Agnhost: f, Nonewprivs: "/nonexistent/nnp", SampleAPI: "/nonexistent/sample-apiserver", Etcd: "/nonexistent/etcd"}}
	err := o.Validate()
	for _, want := range []string{"nonewprivs binary", "sample-apiserver binary", "etcd binary"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error about the %s", err, want)
		}
	}
	o.Images.Nonewprivs, o.Images.SampleAPI, o.Images.Etcd = f, f, f
	if err := o.Validate(); err != nil {
		t.Errorf("Validate() with every binary = %v", err)
	}
}
