package conformance

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	type ent struct {
		Name, Link, Data string
		Mode             int64
	}
	var got []ent
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got = append(got, ent{h.Name, h.Linkname, string(data), h.Mode})
	}
	want := []ent{
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
