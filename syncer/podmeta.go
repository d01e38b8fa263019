package syncer

import (
	"bytes"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/fieldpath"
)

// Downward API files of a tenant pod's labels and annotations as a whole.
//
// A super pod carries vnest's ownership labels and annotations next to the tenant's, so a
// downward API file of metadata.labels or metadata.annotations rendered by the super kubelet
// would show them. Such items come instead from the pod's Secret (podtoken.go), which holds the
// tenant pod's labels and annotations rendered as the kubelet renders them (key="value" lines,
// sorted): a downwardAPI volume with such items becomes a projected volume of a downward API
// source (the other items) and a Secret source; a projected volume gets the Secret source
// beside its downward API source. The syncer rewrites the Secret when the tenant pod's labels or
// annotations change; the kubelet refreshes the files as it does for downward API volumes (on
// its periodic pod sync).

// Keys of the pod Secret for the whole-map downward API fields; named after the field paths.
const (
	metaLabelsKey      = "metadata.labels"
	metaAnnotationsKey = "metadata.annotations"
)

// wholeMapField reports whether item reads the pod's labels or annotations as a whole.
func wholeMapField(item corev1.DownwardAPIVolumeFile) bool {
	return item.FieldRef != nil && (item.FieldRef.FieldPath == metaLabelsKey || item.FieldRef.FieldPath == metaAnnotationsKey)
}

// podMetaData is what the pod Secret holds for tenant pod p's whole-map downward API items:
// its labels and/or annotations rendered as the kubelet renders them; nil when p has none.
func podMetaData(p *corev1.Pod) map[string][]byte {
	var data map[string][]byte
	add := func(items []corev1.DownwardAPIVolumeFile) {
		for _, it := range items {
			if !wholeMapField(it) {
				continue
			}
			if data == nil {
				data = map[string][]byte{}
			}
			m := p.Labels
			if it.FieldRef.FieldPath == metaAnnotationsKey {
				m = p.Annotations
			}
			data[it.FieldRef.FieldPath] = []byte(fieldpath.FormatMap(m))
		}
	}
	for _, v := range p.Spec.Volumes {
		switch {
		case v.DownwardAPI != nil:
			add(v.DownwardAPI.Items)
		case v.Projected != nil && !isServiceAccountTokenVolume(v):
			for _, src := range v.Projected.Sources {
				if src.DownwardAPI != nil {
					add(src.DownwardAPI.Items)
				}
			}
		}
	}
	return data
}

// sameMeta reports whether the Secret data have holds want's metadata files.
func sameMeta(have, want map[string][]byte) bool {
	for _, k := range []string{metaLabelsKey, metaAnnotationsKey} {
		h, hok := have[k]
		w, wok := want[k]
		if hok != wok || !bytes.Equal(h, w) {
			return false
		}
	}
	return true
}

// splitWholeMap moves the whole-map items of items into Secret items of the pod Secret secret.
func splitWholeMap(items []corev1.DownwardAPIVolumeFile, secret string) (rest []corev1.DownwardAPIVolumeFile, fromSecret *corev1.SecretProjection) {
	for _, it := range items {
		if !wholeMapField(it) {
			rest = append(rest, it)
			continue
		}
		if fromSecret == nil {
			fromSecret = &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}
		}
		fromSecret.Items = append(fromSecret.Items, corev1.KeyToPath{Key: it.FieldRef.FieldPath, Path: it.Path, Mode: it.Mode})
	}
	return rest, fromSecret
}

// wholeMapFromSecret rewrites the volumes of spec (a copy of tenant pod p's) so that their
// whole-map downward API items come from p's pod Secret.
func wholeMapFromSecret(spec *corev1.PodSpec, p *corev1.Pod) {
	secret := tokenSecretName(p.Name)
	for i, v := range spec.Volumes {
		switch {
		case v.DownwardAPI != nil:
			rest, fromSecret := splitWholeMap(v.DownwardAPI.Items, secret)
			if fromSecret == nil {
				continue
			}
			var sources []corev1.VolumeProjection
			if len(rest) > 0 {
				sources = append(sources, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: rest}})
			}
			sources = append(sources, corev1.VolumeProjection{Secret: fromSecret})
			spec.Volumes[i].VolumeSource = corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: v.DownwardAPI.DefaultMode, Sources: sources,
			}}
		case v.Projected != nil && !isServiceAccountTokenVolume(v):
			var sources []corev1.VolumeProjection
			for _, src := range v.Projected.Sources {
				if src.DownwardAPI == nil {
					sources = append(sources, src)
					continue
				}
				rest, fromSecret := splitWholeMap(src.DownwardAPI.Items, secret)
				if len(rest) > 0 {
					sources = append(sources, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: rest}})
				}
				if fromSecret != nil {
					sources = append(sources, corev1.VolumeProjection{Secret: fromSecret})
				}
			}
			spec.Volumes[i].Projected.Sources = sources
		}
	}
}
