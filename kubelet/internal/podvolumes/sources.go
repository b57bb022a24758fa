package podvolumes

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/kubelet/internal/podspec"
)

func fieldErr(field, format string, args ...any) error {
	return &podspec.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// keyed turns an object's data into files: every key, or the items asked
// for (a missing key refused unless optional).
func keyed(data map[string][]byte, items []corev1.KeyToPath, defMode os.FileMode, optional bool, f, what string) ([]file, error) {
	if len(items) == 0 {
		var files []file
		for _, k := range slices.Sorted(maps.Keys(data)) {
			files = append(files, file{path: k, data: data[k], mode: defMode})
		}
		return files, nil
	}
	var files []file
	for i, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fieldErr(fmt.Sprintf("%s.items[%d].key", f, i), "%s has no key %q", what, it.Key)
		}
		m := defMode
		if it.Mode != nil {
			m = mode(it.Mode)
		}
		files = append(files, file{path: it.Path, data: d, mode: m})
	}
	return files, nil
}

func (m *Manager) configMap(ns, name string, optional bool, f string) (map[string][]byte, bool, error) {
	if m.ConfigMaps == nil {
		return nil, false, fmt.Errorf("%s: no configMap lister", f)
	}
	cm, err := m.ConfigMaps.ConfigMaps(ns).Get(name)
	if apierrors.IsNotFound(err) && optional {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: configMap %s/%s: %w", f, ns, name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	return data, true, nil
}

func (m *Manager) secret(ns, name string, optional bool, f string) (map[string][]byte, bool, error) {
	if m.Secrets == nil {
		return nil, false, fmt.Errorf("%s: no secret lister", f)
	}
	s, err := m.Secrets.Secrets(ns).Get(name)
	if apierrors.IsNotFound(err) && optional {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: secret %s/%s: %w", f, ns, name, err)
	}
	return s.Data, true, nil
}

func (m *Manager) configMapFiles(pod *corev1.Pod, src *corev1.ConfigMapVolumeSource, f string) ([]file, error) {
	optional := src.Optional != nil && *src.Optional
	data, ok, err := m.configMap(pod.Namespace, src.Name, optional, f)
	if err != nil || !ok {
		return nil, err
	}
	return keyed(data, src.Items, mode(src.DefaultMode), optional, f, "configMap "+src.Name)
}

func (m *Manager) secretFiles(pod *corev1.Pod, src *corev1.SecretVolumeSource, f string) ([]file, error) {
	optional := src.Optional != nil && *src.Optional
	data, ok, err := m.secret(pod.Namespace, src.SecretName, optional, f)
	if err != nil || !ok {
		return nil, err
	}
	return keyed(data, src.Items, mode(src.DefaultMode), optional, f, "secret "+src.SecretName)
}

// projectedFiles are the files of every source of a projected volume.
func (m *Manager) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, f string) ([]file, error) {
	defMode := mode(p.DefaultMode)
	var files []file
	for i, s := range p.Sources {
		sf := fmt.Sprintf("%s.sources[%d]", f, i)
		var add []file
		var err error
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			var data map[string][]byte
			var ok bool
			if data, ok, err = m.configMap(pod.Namespace, s.ConfigMap.Name, optional, sf+".configMap"); err == nil && ok {
				add, err = keyed(data, s.ConfigMap.Items, defMode, optional, sf+".configMap", "configMap "+s.ConfigMap.Name)
			}
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			var data map[string][]byte
			var ok bool
			if data, ok, err = m.secret(pod.Namespace, s.Secret.Name, optional, sf+".secret"); err == nil && ok {
				add, err = keyed(data, s.Secret.Items, defMode, optional, sf+".secret", "secret "+s.Secret.Name)
			}
		case s.DownwardAPI != nil:
			add, err = downwardFiles(pod, s.DownwardAPI.Items, defMode, sf+".downwardAPI")
		case s.ServiceAccountToken != nil:
			var tok file
			tok, err = m.token(ctx, pod, s.ServiceAccountToken, defMode, sf+".serviceAccountToken")
			add = []file{tok}
		default:
			return nil, fieldErr(sf, "this kind of projection is not supported (configMap, secret, downwardAPI and serviceAccountToken are)")
		}
		if err != nil {
			return nil, err
		}
		files = append(files, add...)
	}
	return files, nil
}

// token requests a token of the pod's service account, bound to the pod,
// through the TokenRequest API.
func (m *Manager) token(ctx context.Context, pod *corev1.Pod, s *corev1.ServiceAccountTokenProjection, defMode os.FileMode, f string) (file, error) {
	if m.Client == nil {
		return file{}, fmt.Errorf("%s: no API client to request a token with", f)
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: s.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if s.Audience != "" {
		req.Spec.Audiences = []string{s.Audience}
	}
	tr, err := m.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return file{}, fmt.Errorf("%s: token of service account %s/%s: %w", f, pod.Namespace, sa, err)
	}
	return file{path: s.Path, data: []byte(tr.Status.Token), mode: defMode}, nil
}

// downwardFiles are the files of downward API items: the pod's metadata
// and its containers' resources.
func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defMode os.FileMode, f string) ([]file, error) {
	var files []file
	for i, it := range items {
		itf := fmt.Sprintf("%s.items[%d]", f, i)
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = podField(pod, it.FieldRef.FieldPath, itf+".fieldRef.fieldPath")
		case it.ResourceFieldRef != nil:
			v, err = resourceField(pod, it.ResourceFieldRef, itf+".resourceFieldRef")
		default:
			err = fieldErr(itf, "neither fieldRef nor resourceFieldRef")
		}
		if err != nil {
			return nil, err
		}
		m := defMode
		if it.Mode != nil {
			m = mode(it.Mode)
		}
		files = append(files, file{path: it.Path, data: []byte(v), mode: m})
	}
	return files, nil
}

// podField is the value of a metadata field path of the pod, as the
// kubelet writes it into a downward API file.
func podField(pod *corev1.Pod, path, f string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok {
			if key, ok := strings.CutSuffix(rest, "']"); ok {
				return m[key], nil
			}
		}
	}
	return "", fieldErr(f, "%q is not supported in a volume", path)
}

// formatMap writes labels or annotations as the kubelet does: key="value"
// lines, sorted, the value quoted as Go quotes it.
func formatMap(m map[string]string) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lines = append(lines, k+"="+strconv.Quote(m[k]))
	}
	return strings.Join(lines, "\n")
}

// resourceField is a container's resource in units of the divisor,
// rounded up, as the kubelet writes it.
func resourceField(pod *corev1.Pod, r *corev1.ResourceFieldSelector, f string) (string, error) {
	var c *corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == r.ContainerName {
				c = &list[i]
			}
		}
	}
	if c == nil {
		return "", fieldErr(f+".containerName", "no container %q", r.ContainerName)
	}
	kind, name, _ := strings.Cut(r.Resource, ".")
	var list corev1.ResourceList
	switch kind {
	case "limits":
		list = c.Resources.Limits
	case "requests":
		list = c.Resources.Requests
	default:
		return "", fieldErr(f+".resource", "%q is not supported", r.Resource)
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "limits" {
			return "", fieldErr(f+".resource", "%s of a container without that limit (the node's allocatable) is not supported", r.Resource)
		}
		q = resource.Quantity{}
	}
	d := r.Divisor
	if d.IsZero() {
		d = resource.MustParse("1")
	}
	n, dm := q.MilliValue(), d.MilliValue()
	return strconv.FormatInt((n+dm-1)/dm, 10), nil
}
