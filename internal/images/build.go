package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the timestamp of every tar entry and of the image config, so that
// the image digest depends only on content.
var epoch = time.Unix(0, 0).UTC()

const (
	// annotationImageName is the index.json annotation `ctr images import`
	// takes the full image name from (containerd's images.AnnotationImageName).
	annotationImageName = "io.containerd.image.name"
	// annotationRefName is the OCI tag annotation; set as docker save does.
	annotationRefName = "org.opencontainers.image.ref.name"
)

// entry is one file system object in a layer.
type entry struct {
	name string // slash path without leading "/"
	typ  byte   // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode int64  // permission bits, including the sticky bit
	link string // symlink target
	data []byte // content of a small regular file
	src  string // host path of a large regular file; used when data is nil
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func file(name string, mode int64, data string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: []byte(data)}
}
func hostFile(name string, mode int64, src string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, src: src}
}

// spec is everything that determines an image.
type spec struct {
	ref     string
	entries []entry // one layer
	config  v1.Config
}

// sortEntries orders entries by path so that parents precede children and
// the layer bytes do not depend on the order the spec was written in.
func sortEntries(es []entry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].name < es[j].name })
}

// writeLayer writes the layer tar of es to w.
func writeLayer(w io.Writer, es []entry) error {
	tw := tar.NewWriter(w)
	if err := writeEntries(tw, es); err != nil {
		return err
	}
	return tw.Close()
}

// writeEntries writes es to tw. Large files are streamed from disk and
// their size is taken at open time, so a file that changes between the
// hashing pass and the writing pass fails instead of producing a layer whose
// digest lies.
func writeEntries(tw *tar.Writer, es []entry) error {
	for _, e := range es {
		if err := writeEntry(tw, e); err != nil {
			return fmt.Errorf("tar entry %s: %w", e.name, err)
		}
	}
	return nil
}

func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode, ModTime: epoch}
	if e.typ == tar.TypeDir {
		hdr.Name += "/"
	}
	if e.typ != tar.TypeReg {
		return tw.WriteHeader(hdr)
	}
	content := io.Reader(bytes.NewReader(e.data))
	hdr.Size = int64(len(e.data))
	if e.src != "" {
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", e.src)
		}
		hdr.Size, content = fi.Size(), f
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if n, err := io.Copy(tw, content); err != nil {
		return err
	} else if n != hdr.Size {
		return fmt.Errorf("%s changed while building", e.src)
	}
	return nil
}

// countingHash is the digest and size of a byte stream.
type countingHash struct {
	h hash.Hash
	n int64
}

func newCountingHash() *countingHash { return &countingHash{h: sha256.New()} }

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *countingHash) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(c.h.Sum(nil))}
}

func blob(data []byte) (v1.Hash, int64) {
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, int64(len(data))
}

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

// dockerManifest is one entry of a docker-archive manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeImage writes the image described by s as an OCI layout tarball that
// also has a docker-archive manifest.json.
//
// The layer is generated twice, once to learn its digest and size (the tar
// header of the blob needs the size up front) and once into the tarball,
// which is cheaper than spooling hundreds of megabytes to a temporary file.
func writeImage(w io.Writer, s spec) error {
	es := append([]entry(nil), s.entries...)
	sortEntries(es)

	lh := newCountingHash()
	if err := writeLayer(lh, es); err != nil {
		return err
	}
	layer := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: lh.n, Digest: lh.digest()}
	meta, err := metadata(s, layer)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	if err := writeEntries(tw, meta); err != nil {
		return err
	}
	err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(layer.Digest), Size: layer.Size, Mode: 0o644, ModTime: epoch})
	if err != nil {
		return err
	}
	again := newCountingHash()
	if err := writeLayer(io.MultiWriter(tw, again), es); err != nil {
		return err
	}
	if again.digest() != layer.Digest {
		return fmt.Errorf("layer of %s changed while building (digest %s, then %s)", s.ref, layer.Digest, again.digest())
	}
	return tw.Close()
}

// metadata returns every entry of the image tarball but the layer blob:
// the layout files, the config and the manifest.
func metadata(s spec, layer v1.Descriptor) ([]entry, error) {
	cfg := v1.ConfigFile{
		Architecture: goarch,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config:       s.config,
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{layer.Digest}},
		History:      []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "vnest images build " + s.ref}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDigest, cfgSize := blob(cfgJSON)

	manJSON, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgSize, Digest: cfgDigest},
		Layers:        []v1.Descriptor{layer},
	})
	if err != nil {
		return nil, err
	}
	manDigest, manSize := blob(manJSON)

	_, tag := splitRef(s.ref)
	indexJSON, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType:   types.OCIManifestSchema1,
			Size:        manSize,
			Digest:      manDigest,
			Annotations: map[string]string{annotationImageName: s.ref, annotationRefName: tag},
			Platform:    &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture},
		}},
	})
	if err != nil {
		return nil, err
	}
	dockerJSON, err := json.Marshal([]dockerManifest{{
		Config:   blobPath(cfgDigest),
		RepoTags: []string{s.ref},
		Layers:   []string{blobPath(layer.Digest)},
	}})
	if err != nil {
		return nil, err
	}
	return []entry{
		// index.json first: TarballImage reads only up to it.
		file("index.json", 0o644, string(indexJSON)),
		file("oci-layout", 0o644, `{"imageLayoutVersion":"1.0.0"}`),
		file("manifest.json", 0o644, string(dockerJSON)),
		dir("blobs", 0o755),
		dir("blobs/sha256", 0o755),
		file(blobPath(cfgDigest), 0o644, string(cfgJSON)),
		file(blobPath(manDigest), 0o644, string(manJSON)),
	}, nil
}
