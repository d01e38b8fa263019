package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Namespace is the containerd namespace the CRI plugin serves images from.
const Namespace = "k8s.io"

// ctrBinary is containerd's CLI, from $PATH.
const ctrBinary = "ctr"

// Import imports tarball into the containerd at ctrAddress (a socket path),
// namespace Namespace, and unpacks it into the default snapshotter so the
// CRI plugin can start containers from it without a pull. An image of the
// same name is replaced.
func Import(ctx context.Context, ctrAddress, tarball string) error {
	if _, err := os.Stat(tarball); err != nil {
		return fmt.Errorf("importing image: %w", err)
	}
	if _, err := ctr(ctx, ctrAddress, "images", "import", tarball); err != nil {
		return fmt.Errorf("importing image %s: %w", tarball, err)
	}
	return nil
}

// Tag gives image ref in the containerd at ctrAddress, namespace Namespace,
// the further name alias (replacing an image of that name).
func Tag(ctx context.Context, ctrAddress, ref, alias string) error {
	if _, err := ctr(ctx, ctrAddress, "images", "tag", "--force", ref, alias); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", ref, alias, err)
	}
	return nil
}

// ImageDigest returns the manifest digest ("sha256:...") ref has in the
// containerd at ctrAddress, namespace Namespace, or "" if there is no such
// image.
func ImageDigest(ctx context.Context, ctrAddress, ref string) (string, error) {
	out, err := ctr(ctx, ctrAddress, "images", "ls", "name=="+ref)
	if err != nil {
		return "", fmt.Errorf("looking up image %s: %w", ref, err)
	}
	return parseImageList(out, ref), nil
}

// parseImageList finds ref in the output of `ctr images ls`:
//
//	REF                   TYPE                                       DIGEST        SIZE    PLATFORMS   LABELS
//	vnest.local/pause:1   application/vnd.oci.image.manifest.v1+json sha256:ab...  1.5 MiB linux/amd64 -
func parseImageList(out []byte, ref string) string {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == ref {
			return f[2]
		}
	}
	return ""
}

// Present reports whether ref exists in the containerd at ctrAddress,
// namespace Namespace, whatever its content.
func Present(ctx context.Context, ctrAddress, ref string) (bool, error) {
	d, err := ImageDigest(ctx, ctrAddress, ref)
	return d != "", err
}

// EnsureImported imports tarball unless containerd already has its image
// under the same name with the same manifest digest, and reports whether it
// imported. This is what a node should call at start: cheap when nothing
// changed, and a rebuilt binary never leaves a stale image behind.
func EnsureImported(ctx context.Context, ctrAddress, tarball string) (bool, error) {
	ref, want, err := TarballImage(tarball)
	if err != nil {
		return false, err
	}
	have, err := ImageDigest(ctx, ctrAddress, ref)
	if err != nil {
		return false, err
	}
	if have == want {
		return false, nil
	}
	if err := Import(ctx, ctrAddress, tarball); err != nil {
		return false, err
	}
	// ctr import names images from annotations and silently imports nothing
	// under the expected name when they are off; catch that here rather
	// than as an ErrImageNeverPull on some pod later.
	if have, err = ImageDigest(ctx, ctrAddress, ref); err != nil {
		return true, err
	}
	if have != want {
		return true, fmt.Errorf("imported %s but containerd has %s at %q, want %s", tarball, ref, have, want)
	}
	return true, nil
}

// TarballImage returns the image name and manifest digest of a tarball
// written by Build. It reads only the tarball's first entry.
func TarballImage(tarball string) (ref, digest string, err error) {
	f, err := os.Open(tarball)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", "", fmt.Errorf("%s: no index.json", tarball)
		}
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", tarball, err)
		}
		if hdr.Name != "index.json" {
			continue
		}
		var idx v1.IndexManifest
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return "", "", fmt.Errorf("%s: index.json: %w", tarball, err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations[annotationImageName] == "" {
			return "", "", fmt.Errorf("%s: index.json does not describe exactly one named image", tarball)
		}
		m := idx.Manifests[0]
		return m.Annotations[annotationImageName], m.Digest.String(), nil
	}
}

// ctr runs ctr against address in Namespace and returns its stdout; on
// failure the error carries ctr's stderr, which is where it says why.
func ctr(ctx context.Context, address string, args ...string) ([]byte, error) {
	// Without a socket ctr retries for 10s before it says so.
	if _, err := os.Stat(address); err != nil {
		return nil, fmt.Errorf("containerd socket: %w", err)
	}
	args = append([]string{"--address", address, "--namespace", Namespace, "--connect-timeout", "5s"}, args...)
	cmd := exec.CommandContext(ctx, ctrBinary, args...)
	// After ctx ends ctr is killed; don't also wait forever for its pipes.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.Bytes(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}
