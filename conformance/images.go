package conformance

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vnest-dev/vnest/internal/images"
)

// Registry is where the suite looks for its images: KUBE_TEST_REPO_LIST
// (RepoList) renames every upstream registry to a path below it. The host
// does not resolve; the images exist only in the node's containerd, and the
// suite's pods use the default IfNotPresent pull policy.
const Registry = "vnest.local"

// RepoList is the KUBE_TEST_REPO_LIST document: every registry of
// k8s.io/kubernetes/test/utils/image moved below Registry, except the
// deliberately invalid one.
func RepoList() string {
	return strings.Join([]string{
		"promoterE2eRegistry: " + Registry + "/e2e-test-images",
		"buildImageRegistry: " + Registry + "/build-image",
		"gcEtcdRegistry: " + Registry + "/k8s",
		"gcRegistry: " + Registry + "/k8s",
		"sigStorageRegistry: " + Registry + "/sig-storage",
		"privateRegistry: " + Registry + "/private",
		"dockerLibraryRegistry: " + Registry + "/library",
		"cloudProviderGcpRegistry: " + Registry + "/cloud-provider-gcp",
		"",
	}, "\n")
}

// e2eImage is a suite image name after RepoList's renaming.
func e2eImage(repo, tag string) string { return Registry + "/e2e-test-images/" + repo + ":" + tag }

// The images the suite uses, as imageutils names them (test/utils/image/manifest.go, v1.36.3).
var (
	agnhostRefs = []string{e2eImage("agnhost", "2.63.0"), e2eImage("agnhost", "2.55")}
	glibcDNSRef = e2eImage("glibc-dns-testing", "2.0.0") // DNS tests query with dig and getent; agnhost has both
	kittenRef   = e2eImage("kitten", "1.8")
	nautilusRef = e2eImage("nautilus", "1.8")
	nginxRefs   = []string{e2eImage("nginx", "1.15-4"), e2eImage("nginx", "1.27-0")}
	busyboxRef  = e2eImage("busybox", "1.37.0-1")
	pauseAlias  = Registry + "/k8s/pause:3.10.2"

	nonewprivsRef      = e2eImage("nonewprivs", "1.4")
	sampleAPIServerRef = e2eImage("sample-apiserver", "1.29.2")
	etcdRef            = Registry + "/k8s/etcd:3.6.8-0" // gcEtcdRegistry
)

// aliases are suite images that are vnest's own images under another name.
var aliases = map[string]string{pauseAlias: images.PauseImage}

// ImageSources are the host inputs of the suite's images.
type ImageSources struct {
	Agnhost    string // static agnhost binary (go build k8s.io/kubernetes/test/images/agnhost)
	Nonewprivs string // static nnp (go build k8s.io/kubernetes/test/images/nonewprivs)
	SampleAPI  string // static sample-apiserver (go build k8s.io/sample-apiserver)
	Etcd       string // static etcd server (go build ./cmd/etcd)
	Busybox    string // static busybox (Debian busybox-static)
	KubeSource string // k8s.io/kubernetes@v1.36.3 module directory (test/images data files)
	NginxRoot  string // Debian nginx and nginx-common unpacked here (dpkg-deb -x)
}

// hostTools are the dynamically linked host programs the agnhost image
// carries besides busybox, with the shared libraries ldd names: tests run
// `curl`, `dig` and `nc -z` inside agnhost pods. The Debian packages are
// curl, bind9-dnsutils, netcat-openbsd, bash and libc-bin (getent).
var hostTools = map[string]string{
	"usr/bin/curl":   "/usr/bin/curl",
	"usr/bin/getent": "/usr/bin/getent",
	"usr/bin/dig":    "/usr/bin/dig",
	"usr/bin/nc":     "/bin/nc.openbsd",
}

// layer is the file tree of a one-layer image.
type layer struct {
	dirs  map[string]bool
	files []fileEntry
}

type fileEntry struct {
	name string // slash path without leading "/"
	mode int64
	link string // symlink target, or
	src  string // host file, or
	data []byte // content
}

func (l *layer) mkdirAll(d string) {
	if l.dirs == nil {
		l.dirs = map[string]bool{}
	}
	for ; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		l.dirs[d] = true
	}
}

// add adds f, replacing an entry of the same name.
func (l *layer) add(f fileEntry) {
	l.mkdirAll(path.Dir(f.name))
	for i := range l.files {
		if l.files[i].name == f.name {
			l.files[i] = f
			return
		}
	}
	l.files = append(l.files, f)
}

func (l *layer) hostFile(name, src string, mode int64) {
	l.add(fileEntry{name: name, src: src, mode: mode})
}
func (l *layer) data(name, content string) {
	l.add(fileEntry{name: name, data: []byte(content), mode: 0o644})
}
func (l *layer) symlink(name, target string) { l.add(fileEntry{name: name, link: target, mode: 0o777}) }

// binaryWithLibs adds a dynamically linked host binary at name and every
// shared library it needs at the path ldd resolves it to on this host.
func (l *layer) binaryWithLibs(ctx context.Context, name, src string) error {
	libs, err := sharedLibs(ctx, src)
	if err != nil {
		return err
	}
	l.hostFile(name, src, 0o755)
	for _, lib := range libs {
		if !l.has(strings.TrimPrefix(lib, "/")) {
			l.hostFile(strings.TrimPrefix(lib, "/"), lib, 0o755)
		}
	}
	return nil
}

func (l *layer) has(name string) bool {
	for _, f := range l.files {
		if f.name == name {
			return true
		}
	}
	return false
}

var lddLine = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)`)

// sharedLibs lists the libraries (and the loader) ldd says bin needs.
func sharedLibs(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	return parseLdd(out), nil
}

// parseLdd extracts library paths from ldd output; "statically linked"
// and vdso lines have none.
func parseLdd(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := lddLine.FindStringSubmatch(sc.Text()); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs
}

// write writes the layer as a tar stream, directories first, then entries
// sorted by name, so the bytes (and the digest) depend on the content only.
func (l *layer) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	dirs := make([]string, 0, len(l.dirs))
	for d := range l.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}); err != nil {
			return err
		}
	}
	files := append([]fileEntry(nil), l.files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].name < files[j].name })
	for _, f := range files {
		if err := writeTarEntry(tw, f); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return tw.Close()
}

func writeTarEntry(tw *tar.Writer, f fileEntry) error {
	if f.link != "" {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: f.name, Linkname: f.link, Mode: f.mode})
	}
	data := f.data
	if f.src != "" {
		var err error
		if data, err = os.ReadFile(f.src); err != nil { // follows symlinks: libraries are copied as files
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// tarLayer is the layer as an image layer.
func (l *layer) tarLayer() (v1.Layer, error) {
	var buf bytes.Buffer
	if err := l.write(&buf); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
}

// image turns a layer into an image with the given entrypoint and command.
func (l *layer) image(entrypoint, cmd []string) (v1.Image, error) {
	return l.appendTo(empty.Image, cmd, entrypoint...)
}

// appendTo is base plus the layer, with cmd as its command; entrypoint,
// when given, replaces base's.
func (l *layer) appendTo(base v1.Image, cmd []string, entrypoint ...string) (v1.Image, error) {
	lay, err := l.tarLayer()
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, lay)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.WorkingDir = "/"
	cf.Config.Cmd = cmd
	if len(entrypoint) > 0 {
		cf.Config.Entrypoint = entrypoint
	}
	return mutate.ConfigFile(img, cf)
}

// baseLayer is a small Unix tree: busybox applets in /bin, the users and
// groups the suite's security-context tests expect, /tmp.
func baseLayer(ctx context.Context, busybox string) (*layer, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	l := &layer{}
	l.hostFile("bin/busybox", busybox, 0o755)
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			l.symlink("bin/"+a, "busybox")
		}
	}
	l.data("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
	l.data("etc/group", "root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnogroup:x:65534:\n")
	l.data("etc/nsswitch.conf", "hosts: files dns\n")
	l.mkdirAll("tmp")
	l.mkdirAll("root")
	l.mkdirAll("usr/bin")
	l.mkdirAll("usr/sbin")
	l.mkdirAll("sbin")
	return l, nil
}

// agnhostLayer is upstream's agnhost image (test/images/agnhost/Dockerfile)
// without the fake registry and coredns: /agnhost, the porter certificates,
// /uploads, and the tools tests exec in it.
func agnhostLayer(ctx context.Context, src ImageSources) (*layer, error) {
	l, err := baseLayer(ctx, src.Busybox)
	if err != nil {
		return nil, err
	}
	l.hostFile("agnhost", src.Agnhost, 0o755)
	l.symlink("agnhost-2", "agnhost")
	porter := filepath.Join(src.KubeSource, "test/images/agnhost/porter")
	l.hostFile("localhost.crt", filepath.Join(porter, "localhost.crt"), 0o644)
	l.hostFile("localhost.key", filepath.Join(porter, "localhost.key"), 0o644)
	l.mkdirAll("uploads")
	names := make([]string, 0, len(hostTools))
	for n := range hostTools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := l.binaryWithLibs(ctx, n, hostTools[n]); err != nil {
			return nil, fmt.Errorf("%w (install curl bind9-dnsutils netcat-openbsd bash)", err)
		}
	}
	if err := shIsBash(ctx, l); err != nil {
		return nil, err
	}
	l.symlink("bin/nc", "/usr/bin/nc")
	return l, nil
}

// shIsBash makes bash the image's /bin/sh. Debian's busybox sh (1.35) runs its
// own applets before searching PATH, so `sh -c "nc -z …"` would get busybox
// nc, which lacks -z and -v; and it drops environment variables whose names
// are not shell identifiers, which the ConfigMap and Secret env tests set
// ("data-1") and read back with `sh -c env`.
func shIsBash(ctx context.Context, l *layer) error {
	if err := l.binaryWithLibs(ctx, "bin/bash", "/bin/bash"); err != nil {
		return err
	}
	l.symlink("usr/bin/bash", "/bin/bash")
	l.symlink("bin/sh", "bash")
	return nil
}

// nginxLayer serves /usr/share/nginx/html on port 80 with Debian's nginx,
// as the upstream nginx test image does.
func nginxLayer(ctx context.Context, src ImageSources) (*layer, error) {
	l, err := baseLayer(ctx, src.Busybox)
	if err != nil {
		return nil, err
	}
	if err := l.binaryWithLibs(ctx, "usr/sbin/nginx", filepath.Join(src.NginxRoot, "usr/sbin/nginx")); err != nil {
		return nil, err
	}
	l.hostFile("etc/nginx/mime.types", filepath.Join(src.NginxRoot, "etc/nginx/mime.types"), 0o644)
	l.data("etc/nginx/nginx.conf", `daemon off;
user nobody nogroup;
worker_processes 1;
error_log /dev/stderr;
pid /tmp/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log /dev/stdout;
  client_body_temp_path /tmp/nginx-body;
  proxy_temp_path /tmp/nginx-proxy;
  fastcgi_temp_path /tmp/nginx-fastcgi;
  uwsgi_temp_path /tmp/nginx-uwsgi;
  scgi_temp_path /tmp/nginx-scgi;
  server {
    listen 80;
    listen [::]:80;
    root /usr/share/nginx/html;
  }
}
`)
	l.data("usr/share/nginx/html/index.html", "<html><body><h1>Welcome to nginx!</h1></body></html>\n")
	l.mkdirAll("var/log/nginx")
	l.mkdirAll("var/lib/nginx")
	l.mkdirAll("run")
	return l, nil
}

// program is an image that is one static Go program on the busybox image,
// as upstream's are one program on alpine or a distroless base.
type program struct {
	ref        string
	path       string // in the image
	src        string // host binary
	mode       int64
	entrypoint []string
	cmd        []string
}

// programs are the suite's one-program images with their upstream layout
// (Dockerfiles of test/images/nonewprivs, test/images/sample-apiserver and
// the etcd image; the Aggregator test runs /usr/local/bin/etcd by path).
func programs(src ImageSources) []program {
	return []program{
		// Dockerfile: `chmod +s`; the test reads the effective uid the
		// setuid bit would give unless no_new_privs is set.
		{ref: nonewprivsRef, path: "usr/local/bin/nnp", src: src.Nonewprivs, mode: 0o6755, cmd: []string{"nnp"}},
		{ref: sampleAPIServerRef, path: "sample-apiserver", src: src.SampleAPI, mode: 0o755, entrypoint: []string{"/sample-apiserver"}},
		{ref: etcdRef, path: "usr/local/bin/etcd", src: src.Etcd, mode: 0o755, cmd: []string{"/usr/local/bin/etcd"}},
	}
}

// programImages are the programs' images on base.
func programImages(base v1.Image, src ImageSources) (map[string]v1.Image, error) {
	refs := map[string]v1.Image{}
	for _, p := range programs(src) {
		l := &layer{}
		l.hostFile(p.path, p.src, p.mode)
		img, err := l.appendTo(base, p.cmd, p.entrypoint...)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", p.ref, err)
		}
		refs[p.ref] = img
	}
	return refs, nil
}

// BuildImages writes the suite's images into one docker-archive tarball
// in dir (layers shared between images are stored once) and returns its
// path. Images that are vnest's own under another name (aliases) are not
// built: ImportImages tags them.
func BuildImages(ctx context.Context, dir string, src ImageSources) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	agnLayer, err := agnhostLayer(ctx, src)
	if err != nil {
		return "", fmt.Errorf("agnhost image: %w", err)
	}
	agn, err := agnLayer.image([]string{"/agnhost"}, []string{"pause"})
	if err != nil {
		return "", fmt.Errorf("agnhost image: %w", err)
	}
	refs := map[string]v1.Image{}
	for _, r := range append(agnhostRefs, glibcDNSRef) {
		refs[r] = agn
	}
	for _, demo := range []struct{ ref, dir string }{{kittenRef, "kitten"}, {nautilusRef, "nautilus"}} {
		// kitten and nautilus are agnhost plus two files served by test-webserver.
		l := &layer{}
		html := filepath.Join(src.KubeSource, "test/images", demo.dir, "html")
		for _, f := range []string{demo.dir + ".jpg", "data.json"} {
			l.hostFile(f, filepath.Join(html, f), 0o644)
		}
		if refs[demo.ref], err = l.appendTo(agn, []string{"test-webserver"}); err != nil {
			return "", fmt.Errorf("%s image: %w", demo.dir, err)
		}
	}
	bb, err := baseLayer(ctx, src.Busybox)
	if err != nil {
		return "", fmt.Errorf("busybox image: %w", err)
	}
	if err := shIsBash(ctx, bb); err != nil {
		return "", fmt.Errorf("busybox image: %w", err)
	}
	if refs[busyboxRef], err = bb.image(nil, []string{"sh"}); err != nil {
		return "", fmt.Errorf("busybox image: %w", err)
	}
	progs, err := programImages(refs[busyboxRef], src)
	if err != nil {
		return "", err
	}
	maps.Copy(refs, progs)
	if src.NginxRoot != "" {
		ngx, err := nginxLayer(ctx, src)
		if err != nil {
			return "", fmt.Errorf("nginx image: %w", err)
		}
		img, err := ngx.image(nil, []string{"/usr/sbin/nginx"})
		if err != nil {
			return "", fmt.Errorf("nginx image: %w", err)
		}
		for _, r := range nginxRefs {
			refs[r] = img
		}
	}
	tagged := map[name.Reference]v1.Image{}
	for r, img := range refs {
		tag, err := name.NewTag(r)
		if err != nil {
			return "", err
		}
		tagged[tag] = img
	}
	p := filepath.Join(dir, "e2e-images.tar")
	if err := tarball.MultiRefWriteToFile(p, tagged); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return p, nil
}

// ImportImages imports the tarball into the containerd at address
// (namespace k8s.io) and tags vnest's pause and busybox images with the
// names the suite uses for them; those must already be there, as `vnest
// up` imports them at start.
func ImportImages(ctx context.Context, address, tarball string) error {
	if err := images.Import(ctx, address, tarball); err != nil {
		return err
	}
	for alias, ref := range aliases {
		if err := images.Tag(ctx, address, ref, alias); err != nil {
			return err
		}
	}
	return nil
}

// ContainerdAddress reads the containerd socket of a real-node `vnest up`
// from its data directory (DIR/containerd/config.toml, [grpc] address).
func ContainerdAddress(superDataDir string) (string, error) {
	cfg := filepath.Join(superDataDir, "containerd", "config.toml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		return "", fmt.Errorf("finding the node's containerd (is %s a real-node vnest up data dir?): %w", superDataDir, err)
	}
	if a := grpcAddress(data); a != "" {
		return a, nil
	}
	return "", fmt.Errorf("%s has no [grpc] address", cfg)
}

func grpcAddress(toml []byte) string {
	section := ""
	for _, line := range strings.Split(string(toml), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[grpc]" && strings.TrimSpace(k) == "address" {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}
