package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeApplets is what the fake busybox lists: duplicates and "busybox"
// itself must be dropped.
var fakeApplets = []string{"[", "cat", "echo", "env", "hostname", "httpd", "ls", "nslookup", "sh", "sleep", "wget"}

// writeFile writes an executable test input and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeSources returns Sources made of small files; the busybox is a script
// answering --list, which is all Build runs it for.
func fakeSources(t *testing.T) Sources {
	t.Helper()
	dir := t.TempDir()
	list := "busybox\n" + strings.Join(fakeApplets, "\n") + "\nsh\n"
	return Sources{
		PauseBinary:        writeFile(t, dir, "pause", "fake pause binary"),
		BusyboxBinary:      writeFile(t, dir, "busybox", "#!/bin/sh\nprintf '"+strings.ReplaceAll(list, "\n", `\n`)+"'\n"),
		VnestBinary:        writeFile(t, dir, "vnest", "fake vnest binary"),
		ControlPlaneBinary: writeFile(t, dir, "vnest-apiserver", "fake vnest-apiserver binary"),
	}
}

func mustBuild(t *testing.T, outDir string, src Sources, refs ...string) map[string]string {
	t.Helper()
	got, err := Build(t.Context(), outDir, src, refs...)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return got
}

func digestOf(t *testing.T, path string) string {
	t.Helper()
	_, d, err := TarballImage(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildIsReproducible(t *testing.T) {
	src := fakeSources(t)
	first := mustBuild(t, t.TempDir(), src)

	// Same content at other paths and times must give the same bytes.
	other := fakeSources(t)
	later := time.Now().Add(time.Hour)
	for _, p := range []string{other.PauseBinary, other.BusyboxBinary, other.VnestBinary, other.ControlPlaneBinary} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	second := mustBuild(t, t.TempDir(), other)

	if len(first) != len(AllImages) {
		t.Fatalf("Build returned %d tarballs, want %d", len(first), len(AllImages))
	}
	for _, ref := range AllImages {
		a, err := os.ReadFile(first[ref])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(second[ref])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: tarballs differ between builds (digests %s, %s)", ref, digestOf(t, first[ref]), digestOf(t, second[ref]))
		}
		if gotRef, _, err := TarballImage(first[ref]); err != nil || gotRef != ref {
			t.Errorf("TarballImage(%s) = %q, %v; want %q", first[ref], gotRef, err, ref)
		}
	}
}

func TestBuildSkipsUnchangedInputs(t *testing.T) {
	src := fakeSources(t)
	out := t.TempDir()
	p := mustBuild(t, out, src, PauseImage)[PauseImage]
	before := digestOf(t, p)
	// Mark the tarball so a rewrite shows even though it would be identical.
	old := time.Unix(1000, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}

	mustBuild(t, out, src, PauseImage)
	if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("unchanged inputs: tarball was rewritten (stat %v, %v)", fi, err)
	}

	writeFile(t, filepath.Dir(src.PauseBinary), "pause", "another pause binary")
	mustBuild(t, out, src, PauseImage)
	if after := digestOf(t, p); after == before {
		t.Errorf("changed binary: digest stayed %s", after)
	}
}

// TestBuildReplacesCutTarball: a tarball cut short under its stamp (a power loss after the
// stamp was written, before the tarball's data reached the disk) is built again, not kept.
func TestBuildReplacesCutTarball(t *testing.T) {
	src := fakeSources(t)
	out := t.TempDir()
	p := mustBuild(t, out, src, PauseImage)[PauseImage]
	want := digestOf(t, p)
	for _, size := range []int64{0, 100} {
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		mustBuild(t, out, src, PauseImage)
		if got := digestOf(t, p); got != want {
			t.Errorf("a tarball cut to %d bytes under its stamp: digest %s after Build, want %s (built again)", size, got, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	src := fakeSources(t)
	tests := map[string]struct {
		src  Sources
		refs []string
		want string
	}{
		"unknown ref":        {src: src, refs: []string{"vnest.local/nginx:1"}, want: "unknown image"},
		"missing vnest path": {src: Sources{PauseBinary: src.PauseBinary}, refs: []string{VnestImage}, want: "not set"},
		"no such binary":     {src: Sources{PauseBinary: "/nonexistent/pause"}, refs: []string{PauseImage}, want: "no such file"},
		// A control-plane binary that is not there is an error, not a silent link to vnest.
		"no such control plane": {src: Sources{VnestBinary: src.VnestBinary, ControlPlaneBinary: "/nonexistent/vnest-apiserver"}, refs: []string{VnestImage}, want: "no such file"},
		"directory binary":      {src: Sources{PauseBinary: t.TempDir()}, refs: []string{PauseImage}, want: "not a regular file"},
		"busybox without sh": {
			src:  Sources{BusyboxBinary: writeFile(t, t.TempDir(), "bb", "#!/bin/sh\necho ls\n")},
			refs: []string{BusyboxImage}, want: "no sh applet",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Build(t.Context(), t.TempDir(), tc.src, tc.refs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// fsEntry is what a test checks of one file system object in a layer.
type fsEntry struct {
	Type byte
	Mode int64
	Link string
	Data string // only compared when the want sets it
}

func TestImageContents(t *testing.T) {
	src := fakeSources(t)
	tarballs := mustBuild(t, t.TempDir(), src)
	// Without a binary of the control plane alone, the image links its place to vnest.
	linked := src
	linked.ControlPlaneBinary = filepath.Join(t.TempDir(), "vnest-apiserver") // vnest, under another name
	if err := os.Symlink(src.VnestBinary, linked.ControlPlaneBinary); err != nil {
		t.Fatal(err)
	}
	linkedTarball := mustBuild(t, t.TempDir(), linked, VnestImage)[VnestImage]
	path := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	base := map[string]fsEntry{
		"etc/":       {Type: tar.TypeDir, Mode: 0o755},
		"etc/passwd": {Type: tar.TypeReg, Mode: 0o644, Data: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		"etc/group":  {Type: tar.TypeReg, Mode: 0o644, Data: "root:x:0:\nnobody:x:65534:\n"},
		"root/":      {Type: tar.TypeDir, Mode: 0o700},
		"tmp/":       {Type: tar.TypeDir, Mode: 0o1777},
	}
	with := func(m map[string]fsEntry, extra map[string]fsEntry) map[string]fsEntry {
		out := map[string]fsEntry{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	busybox := with(base, map[string]fsEntry{
		"bin/":        {Type: tar.TypeDir, Mode: 0o755},
		"bin/busybox": {Type: tar.TypeReg, Mode: 0o755},
		"sbin":        {Type: tar.TypeSymlink, Mode: 0o777, Link: "bin"},
		"usr/":        {Type: tar.TypeDir, Mode: 0o755},
		"usr/bin":     {Type: tar.TypeSymlink, Mode: 0o777, Link: "../bin"},
		"usr/sbin":    {Type: tar.TypeSymlink, Mode: 0o777, Link: "../bin"},
	})
	for _, a := range fakeApplets {
		busybox["bin/"+a] = fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Link: "busybox"}
	}

	vnest := with(with(base, map[string]fsEntry{
		"usr/":                {Type: tar.TypeDir, Mode: 0o755},
		"usr/local/":          {Type: tar.TypeDir, Mode: 0o755},
		"usr/local/bin/":      {Type: tar.TypeDir, Mode: 0o755},
		"usr/local/bin/vnest": {Type: tar.TypeReg, Mode: 0o755, Data: "fake vnest binary"},
	}), libEntries())
	vnestConfig := v1.Config{Entrypoint: []string{"/usr/local/bin/vnest"}, Env: []string{path}, WorkingDir: "/"}

	tests := map[string]struct {
		ref     string
		tarball string // "": the one Build made of src
		config  v1.Config
		entries map[string]fsEntry
	}{
		"pause": {
			ref:     PauseImage,
			config:  v1.Config{Entrypoint: []string{"/pause"}, Env: []string{path}, WorkingDir: "/"},
			entries: map[string]fsEntry{"pause": {Type: tar.TypeReg, Mode: 0o755, Data: "fake pause binary"}},
		},
		"busybox": {
			ref:     BusyboxImage,
			config:  v1.Config{Cmd: []string{"sh"}, Env: []string{path}, WorkingDir: "/"},
			entries: busybox,
		},
		"vnest": {
			ref:    VnestImage,
			config: vnestConfig,
			entries: with(vnest, map[string]fsEntry{
				"usr/local/bin/vnest-apiserver": {Type: tar.TypeReg, Mode: 0o755, Data: "fake vnest-apiserver binary"},
			}),
		},
		"vnest, control plane linked": {
			ref:     VnestImage,
			tarball: linkedTarball,
			config:  vnestConfig,
			entries: with(vnest, map[string]fsEntry{
				"usr/local/bin/vnest-apiserver": {Type: tar.TypeSymlink, Mode: 0o777, Link: "vnest"},
			}),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tb := tarballs[tc.ref]
			if tc.tarball != "" {
				tb = tc.tarball
			}
			img, err := tarball.ImageFromPath(tb, nil)
			if err != nil {
				t.Fatalf("go-containerregistry cannot load the tarball: %v", err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.config, cfg.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Equal(time.Unix(0, 0)) {
				t.Errorf("config platform/created = %s/%s %v, want linux/%s at the epoch", cfg.OS, cfg.Architecture, cfg.Created, runtime.GOARCH)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("layers = %d, %v; want 1", len(layers), err)
			}
			if diffID, err := layers[0].DiffID(); err != nil || len(cfg.RootFS.DiffIDs) != 1 || diffID != cfg.RootFS.DiffIDs[0] {
				t.Errorf("layer diffID %v (%v) does not match config %v", diffID, err, cfg.RootFS.DiffIDs)
			}
			rc, err := layers[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got := readLayer(t, rc, tc.entries)
			if diff := cmp.Diff(tc.entries, got); diff != "" {
				t.Errorf("layer (-want +got):\n%s", diff)
			}
		})
	}
}

// readLayer returns the entries of a layer tar, with content for the ones
// want has content for, and checks the headers are reproducible.
func readLayer(t *testing.T, r io.Reader, want map[string]fsEntry) map[string]fsEntry {
	t.Helper()
	got := map[string]fsEntry{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(time.Unix(0, 0)) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" {
			t.Errorf("%s: header not reproducible: mtime %v uid %d gid %d uname %q", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname)
		}
		if _, dup := got[hdr.Name]; dup {
			t.Errorf("%s: duplicate entry", hdr.Name)
		}
		e := fsEntry{Type: hdr.Typeflag, Mode: hdr.Mode, Link: hdr.Linkname}
		if want[hdr.Name].Data != "" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			e.Data = string(b)
		}
		got[hdr.Name] = e
	}
}

// TestBusyboxApplets checks the real busybox-static has what pods and tests
// rely on.
func TestBusyboxApplets(t *testing.T) {
	if _, err := os.Stat(DefaultBusyboxBinary); err != nil {
		t.Skipf("no %s: %v", DefaultBusyboxBinary, err)
	}
	applets, err := busyboxApplets(t.Context(), DefaultBusyboxBinary)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range applets {
		have[a] = true
	}
	for _, a := range []string{"sh", "httpd", "wget", "nslookup", "sleep", "cat", "echo", "ls", "hostname", "env"} {
		if !have[a] {
			t.Errorf("busybox lacks applet %q", a)
		}
	}
	if have["busybox"] {
		t.Error(`applets include "busybox" itself`)
	}
}

func TestParseApplets(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []string
		wantErr bool
	}{
		"sorted and deduplicated": {in: "sh\nls\n[\nsh\n", want: []string{"[", "ls", "sh"}},
		"drops junk":              {in: "busybox\n\n  \n../x\n.\nsh\r\n", want: []string{"sh"}},
		"needs sh":                {in: "ls\n", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseApplets([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseImageList(t *testing.T) {
	out := `REF                   TYPE                                       DIGEST                                                                  SIZE     PLATFORMS   LABELS
vnest.local/busybox:1 application/vnd.oci.image.manifest.v1+json sha256:1111111111111111111111111111111111111111111111111111111111111111 1.1 MiB  linux/amd64 -
vnest.local/pause:1   application/vnd.oci.image.manifest.v1+json sha256:2222222222222222222222222222222222222222222222222222222222222222 700.0 KiB linux/amd64 -
`
	tests := map[string]struct {
		out, ref, want string
	}{
		"found":        {out: out, ref: PauseImage, want: "sha256:" + strings.Repeat("2", 64)},
		"prefix only":  {out: out, ref: "vnest.local/pause", want: ""},
		"missing":      {out: out, ref: VnestImage, want: ""},
		"empty output": {out: "", ref: PauseImage, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := parseImageList([]byte(tc.out), tc.ref); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTarballName(t *testing.T) {
	for ref, want := range map[string]string{PauseImage: "pause_1.tar", BusyboxImage: "busybox_1.tar", VnestImage: "vnest_dev.tar"} {
		if got := TarballName(ref); got != want {
			t.Errorf("TarballName(%q) = %q, want %q", ref, got, want)
		}
	}
}

// libEntries are the C runtime files the vnest image carries from this host
// (dynamic loader and libc; see vnestLibs), with their parent directories.
func libEntries() map[string]fsEntry {
	m := map[string]fsEntry{}
	for _, l := range runtimeLibs() {
		rel := strings.TrimPrefix(l, "/")
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			m[d+"/"] = fsEntry{Type: tar.TypeDir, Mode: 0o755}
		}
		m[rel] = fsEntry{Type: tar.TypeReg, Mode: 0o755}
	}
	return m
}
