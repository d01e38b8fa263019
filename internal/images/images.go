package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vnest-dev/vnest/apiserver/layout"
)

// The images Build knows. Their registry host does not resolve: they exist
// only in the nodes' containerd and must never be pulled (the kubelet's
// default IfNotPresent pull policy, or an explicit Never, keeps it so).
const (
	PauseImage   = "vnest.local/pause:1"
	BusyboxImage = "vnest.local/busybox:1"
	VnestImage   = "vnest.local/vnest:dev"
)

// AllImages lists every ref Build knows, in build order.
var AllImages = []string{PauseImage, BusyboxImage, VnestImage}

// DefaultBusyboxBinary is the static busybox of Debian's busybox-static.
const DefaultBusyboxBinary = "/bin/busybox"

// formatVersion is part of every input stamp; bump it whenever the layout or
// content rules change so old tarballs are rebuilt.
const formatVersion = "vnest-images/2"

// defaultPath is the PATH of every image.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// goarch is the architecture of every image: they are made from binaries of
// the machine that runs them.
var goarch = runtime.GOARCH

// Sources are the host binaries the images are made of. Only the ones the
// requested images need must be set.
type Sources struct {
	PauseBinary   string // static pause binary (bin/pause, from cmd/pause)
	BusyboxBinary string // static busybox; DefaultBusyboxBinary if empty
	VnestBinary   string // bin/vnest
	// ControlPlaneBinary is bin/vnest-apiserver, the tenant control plane alone, which the image
	// holds as ControlPlaneCommand; empty or VnestBinary: the image links ControlPlaneCommand to
	// vnest (which runs `vnest-apiserver apiserver ...` as `vnest apiserver ...`).
	ControlPlaneBinary string
}

// ControlPlaneCommand is the executable of VnestImage that the cluster provisioner runs a tenant
// control plane with (its first argument "apiserver"): a copy of bin/vnest-apiserver, which keeps
// ≈10 MiB less memory than the vnest binary, or a link to vnest when Sources have none.
const ControlPlaneCommand = layout.ControlPlaneImageCommand

// TarballName is the file name Build gives the tarball of ref in its outDir,
// e.g. "busybox_1.tar" for BusyboxImage.
func TarballName(ref string) string {
	repo, tag := splitRef(ref)
	return path.Base(repo) + "_" + tag + ".tar"
}

// Build writes one image tarball per ref into outDir (created if missing)
// and returns ref -> tarball path. With no refs it builds AllImages.
//
// Tarballs are reproducible: the same binaries give byte-identical tarballs
// and so the same image digest. A tarball whose inputs (ref, format version,
// and path, size, mode and mtime of each binary) match those recorded in its
// ".inputs" stamp file next to it, and whose size is the one recorded there, is
// left alone. Tarballs are replaced
// atomically, so a concurrent reader never sees a partial one.
func Build(ctx context.Context, outDir string, src Sources, refs ...string) (map[string]string, error) {
	if len(refs) == 0 {
		refs = AllImages
	}
	if src.BusyboxBinary == "" {
		src.BusyboxBinary = DefaultBusyboxBinary
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(refs))
	for _, ref := range refs {
		p, err := buildOne(ctx, outDir, src, ref)
		if err != nil {
			return nil, fmt.Errorf("building image %s: %w", ref, err)
		}
		out[ref] = p
	}
	return out, nil
}

func buildOne(ctx context.Context, outDir string, src Sources, ref string) (string, error) {
	var inputs []string
	var controlPlane string // VnestImage's control plane binary ("": a link to vnest)
	switch ref {
	case PauseImage:
		inputs = []string{src.PauseBinary}
	case BusyboxImage:
		inputs = []string{src.BusyboxBinary}
	case VnestImage:
		inputs = append([]string{src.VnestBinary}, runtimeLibs()...)
		if controlPlane = src.controlPlane(); controlPlane != "" {
			inputs = append(inputs, controlPlane)
		}
	default:
		return "", fmt.Errorf("unknown image (known: %s)", strings.Join(AllImages, ", "))
	}
	stamp, err := inputStamp(ref, inputs)
	if err != nil {
		return "", err
	}
	tarball := filepath.Join(outDir, TarballName(ref))
	stampFile := tarball + ".inputs"
	if old, err := os.ReadFile(stampFile); err == nil {
		if fi, err := os.Stat(tarball); err == nil && string(old) == stamp+tarballLine(fi.Size()) {
			return tarball, nil
		}
	}

	var s spec
	switch ref {
	case PauseImage:
		s = pauseSpec(src.PauseBinary)
	case BusyboxImage:
		applets, err := busyboxApplets(ctx, src.BusyboxBinary)
		if err != nil {
			return "", err
		}
		s = busyboxSpec(src.BusyboxBinary, applets)
	case VnestImage:
		s = vnestSpec(src.VnestBinary, controlPlane)
	}
	if err := writeFileAtomic(tarball, func(f *os.File) error { return writeImage(f, s) }); err != nil {
		return "", err
	}
	fi, err := os.Stat(tarball)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(stampFile, []byte(stamp+tarballLine(fi.Size())), 0o644); err != nil {
		return "", err
	}
	return tarball, nil
}

// tarballLine is the stamp's record of the tarball's size. The tarball is not synced to disk
// (a sync of the vnest image's ~190 MB costs seconds at every first start), so after a power
// loss its stamp may outlive its data: a tarball cut short or emptied then no longer matches
// its stamp and is built again, where it would have been imported as it was and failed.
func tarballLine(size int64) string { return fmt.Sprintf("tarball %d\n", size) }

// inputStamp identifies the inputs of an image cheaply, without reading the
// binaries: hashing a 300 MB binary just to learn that nothing changed costs
// about half as much as building its image. A binary rebuilt with the same
// content gets a new mtime and so a rebuild, which yields the same digest.
func inputStamp(ref string, files []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", formatVersion, ref, goarch)
	for _, f := range files {
		if f == "" {
			return "", errors.New("binary path not set in Sources")
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s is not a regular file", abs)
		}
		fmt.Fprintf(h, "%s %d %o %d\n", abs, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)) + "\n", nil
}

func writeFileAtomic(name string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// baseEntries is the skeleton every non-pause image gets: what programs
// expect of a Unix system that the kubelet does not mount in (it does mount
// /etc/hosts, /etc/hostname and /etc/resolv.conf).
func baseEntries() []entry {
	return []entry{
		dir("etc", 0o755),
		file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		file("etc/group", 0o644, "root:x:0:\nnobody:x:65534:\n"),
		dir("root", 0o700),
		dir("tmp", 0o1777),
	}
}

func pauseSpec(bin string) spec {
	return spec{
		ref:     PauseImage,
		entries: []entry{hostFile("pause", 0o755, bin)},
		config:  v1.Config{Entrypoint: []string{"/pause"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}
}

// vnestLibs are the C runtime files a cgo-linked vnest needs (the Go
// resolver and os/user pull in cgo by default): the dynamic loader and libc,
// copied from the host that built the binary, at the same paths.
var vnestLibs = []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"}

// runtimeLibs are those of vnestLibs present on this host.
func runtimeLibs() []string {
	var libs []string
	for _, l := range vnestLibs {
		if _, err := os.Stat(l); err == nil {
			libs = append(libs, l)
		}
	}
	return libs
}

// controlPlane is the host file to copy to ControlPlaneCommand, "" for a link to vnest (none
// given, or the vnest binary under any name).
func (s Sources) controlPlane() string {
	if s.ControlPlaneBinary == "" {
		return ""
	}
	cp, err := os.Stat(s.ControlPlaneBinary)
	if err != nil {
		return s.ControlPlaneBinary // Build reports it
	}
	if vnest, err := os.Stat(s.VnestBinary); err == nil && os.SameFile(cp, vnest) {
		return ""
	}
	return s.ControlPlaneBinary
}

// vnestSpec is VnestImage: vnest, and the control plane binary cp ("": a link to vnest).
func vnestSpec(bin, cp string) spec {
	controlPlane := symlink(strings.TrimPrefix(ControlPlaneCommand, "/"), "vnest")
	if cp != "" {
		controlPlane = hostFile(strings.TrimPrefix(ControlPlaneCommand, "/"), 0o755, cp)
	}
	es := append(baseEntries(),
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
		hostFile("usr/local/bin/vnest", 0o755, bin),
		controlPlane,
	)
	dirs := map[string]bool{}
	for _, l := range runtimeLibs() {
		rel := strings.TrimPrefix(l, "/")
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			es = append(es, dir(d, 0o755))
		}
		es = append(es, hostFile(rel, 0o755, l))
	}
	return spec{
		ref:     VnestImage,
		entries: es,
		config:  v1.Config{Entrypoint: []string{"/usr/local/bin/vnest"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}
}

// busyboxSpec puts every applet in /bin and makes /sbin, /usr/bin and
// /usr/sbin point there, so both "#!/usr/bin/env sh" and absolute paths
// copied from other images work.
func busyboxSpec(bin string, applets []string) spec {
	es := append(baseEntries(),
		dir("bin", 0o755),
		hostFile("bin/busybox", 0o755, bin),
		symlink("sbin", "bin"),
		dir("usr", 0o755),
		symlink("usr/bin", "../bin"),
		symlink("usr/sbin", "../bin"),
	)
	for _, a := range applets {
		es = append(es, symlink("bin/"+a, "busybox"))
	}
	return spec{
		ref:     BusyboxImage,
		entries: es,
		config:  v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}
}

// busyboxApplets asks the busybox binary which applets it has. It must run on
// this machine, which holds as the images are for this machine's
// architecture.
func busyboxApplets(ctx context.Context, bin string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return parseApplets(out)
}

func parseApplets(out []byte) ([]string, error) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		// "busybox" itself is the binary; "[" and "[[" are fine file names.
		if a == "" || a == "busybox" || strings.ContainsAny(a, "/\x00") || a == "." || a == ".." {
			continue
		}
		seen[a] = true
	}
	if !seen["sh"] {
		return nil, errors.New("busybox has no sh applet")
	}
	applets := make([]string, 0, len(seen))
	for a := range seen {
		applets = append(applets, a)
	}
	sort.Strings(applets)
	return applets, nil
}

// splitRef splits "host/repo:tag" into "host/repo" and "tag". Refs here are
// our own constants, so no digests and no default tag.
func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}
