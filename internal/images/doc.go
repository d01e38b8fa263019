// Package images builds vnest's own container images from local binaries and
// loads them into containerd, so a vnest cluster needs neither Docker nor a
// registry nor network access to run pods.
//
// It owns:
//   - the three image references (PauseImage, BusyboxImage, VnestImage) and
//     what goes into each image;
//   - the tarball format: an OCI image layout (index.json with the
//     io.containerd.image.name annotation, so `ctr images import` names the
//     image without --base-name) that also carries a docker-archive
//     manifest.json, so docker-archive readers such as go-containerregistry's
//     tarball package load it too. Layers are uncompressed: the vnest binary
//     is hundreds of megabytes, gzip would cost seconds on every build, and
//     containerd spends what it saves in transfer on decompressing;
//   - reproducibility: fixed timestamps, owners and modes, sorted entries, so
//     the same inputs give the same manifest digest, which is what
//     EnsureImported compares to skip re-importing;
//   - driving `ctr` for import and lookup in the "k8s.io" namespace, where
//     the CRI plugin (and so the kubelet) sees images.
//
// It must not:
//   - pull from or push to any registry, or need a Docker daemon;
//   - start, configure or stop containerd (the node code does that; tests
//     start a private one of their own);
//   - import Kubernetes or containerd Go packages: `ctr` is the interface,
//     which keeps this package cheap to compile and test;
//   - compile binaries: callers pass paths to already built ones in Sources.
package images
