package podvolumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/troupe-run/troupe/kubelet/internal/podspec"
)

// Manager prepares and removes pods' volumes.
type Manager struct {
	// Dir holds a directory per pod; it is made 0700 if missing.
	Dir string
	// ConfigMaps and Secrets get the objects that volumes name
	// (virtual-kubelet's ProviderConfig hands the provider such listers).
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	// Client requests service account tokens (projected
	// serviceAccountToken sources); nil refuses them.
	Client kubernetes.Interface
}

// podDir is the directory of pod uid, symlinks of Dir resolved: the mount
// table, which tells which volumes are mounted, has real paths.
func (m *Manager) podDir(uid types.UID) (string, error) {
	u := string(uid)
	if u == "" || u == "." || !filepath.IsLocal(u) || filepath.Base(u) != u {
		return "", fmt.Errorf("pod uid %q: not a file name", u)
	}
	if err := os.Mkdir(m.Dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("pods' volumes: %w", err)
	}
	dir, err := filepath.EvalSymlinks(m.Dir)
	if err != nil {
		return "", fmt.Errorf("pods' volumes: %w", err)
	}
	return filepath.Join(dir, u), nil
}

// Prepare materialises the pod's volumes and returns each one's host
// directory by name. It may be called again for a pod already prepared
// (after an agent restart, or to refresh what the volumes hold).
func (m *Manager) Prepare(ctx context.Context, pod *corev1.Pod) (podspec.Volumes, error) {
	pd, err := m.podDir(pod.UID)
	if err != nil {
		return nil, err
	}
	vd := filepath.Join(pd, "volumes")
	for _, d := range []string{pd, vd} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("volumes of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	vols := podspec.Volumes{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		f := fmt.Sprintf("spec.volumes[%d]", i)
		if v.Name == "" || v.Name == "." || filepath.Base(v.Name) != v.Name || !filepath.IsLocal(v.Name) {
			return nil, &podspec.FieldError{Field: f + ".name", Reason: fmt.Sprintf("%q: not a file name", v.Name)}
		}
		dir := filepath.Join(vd, v.Name)
		mounted, err := isMountPoint(dir)
		if err != nil {
			return nil, err
		}
		if err := m.prepare(ctx, pod, v, f, dir, mounted); err != nil {
			var fe *podspec.FieldError
			if errors.As(err, &fe) {
				return nil, err
			}
			return nil, fmt.Errorf("%s (%s) of pod %s/%s: %w", f, v.Name, pod.Namespace, pod.Name, err)
		}
		vols[v.Name] = dir
	}
	return vols, nil
}

func (m *Manager) prepare(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, f, dir string, mounted bool) error {
	fsGroup := fsGroupOf(pod)
	// Files of the API's objects are read-only in the kubelet: fsGroup
	// reads them.
	ro := ownership{gid: fsGroup, groupMask: 0o440}
	src := &v.VolumeSource
	switch {
	case src.EmptyDir != nil:
		return m.emptyDir(src.EmptyDir, f, dir, mounted, fsGroup)
	case src.ConfigMap != nil:
		files, err := m.configMapFiles(pod, src.ConfigMap, f+".configMap")
		if err != nil {
			return err
		}
		return writeVolume(dir, files, ro, false, mounted)
	case src.Secret != nil:
		files, err := m.secretFiles(pod, src.Secret, f+".secret")
		if err != nil {
			return err
		}
		return writeVolume(dir, files, ro, true, mounted)
	case src.DownwardAPI != nil:
		files, err := downwardFiles(pod, src.DownwardAPI.Items, mode(src.DownwardAPI.DefaultMode), f+".downwardAPI")
		if err != nil {
			return err
		}
		return writeVolume(dir, files, ro, false, mounted)
	case src.Projected != nil:
		files, err := m.projectedFiles(ctx, pod, src.Projected, f+".projected")
		if err != nil {
			return err
		}
		return writeVolume(dir, files, ro, true, mounted)
	case src.HostPath != nil:
		return &podspec.FieldError{Field: f + ".hostPath", Reason: "not supported: a pod may not reach the node's files"}
	default:
		return &podspec.FieldError{Field: f, Reason: "this kind of volume is not supported (emptyDir, configMap, secret, downwardAPI and projected are)"}
	}
}

// fsGroupOf is the pod's fsGroup, nil if none.
func fsGroupOf(pod *corev1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// emptyDir makes an emptyDir volume: a directory, or for medium Memory a
// tmpfs mounted on it.
func (m *Manager) emptyDir(e *corev1.EmptyDirVolumeSource, f, dir string, mounted bool, fsGroup *int64) error {
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	switch e.Medium {
	case corev1.StorageMediumDefault:
	case corev1.StorageMediumMemory:
		if !mounted {
			var size int64
			if e.SizeLimit != nil {
				size = e.SizeLimit.Value()
			}
			if err := mountTmpfs(dir, size, true); err != nil {
				return err
			}
		}
	default:
		return &podspec.FieldError{Field: f + ".emptyDir.medium", Reason: fmt.Sprintf("%s is not supported", e.Medium)}
	}
	return ownership{gid: fsGroup, groupMask: 0o070}.apply(dir, 0o777, true)
}

// writeVolume writes files into the volume's directory dir, on a tmpfs
// mounted there first if secret.
func writeVolume(dir string, files []file, own ownership, secret, mounted bool) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if secret && !mounted {
		if err := mountTmpfs(dir, 0, false); err != nil {
			return err
		}
	}
	if err := own.apply(dir, 0o755, true); err != nil {
		return err
	}
	return writeAtomic(dir, files, own)
}

// mode is a volume's or an item's mode, 0644 (the API's default) if unset.
func mode(m *int32) os.FileMode {
	if m == nil {
		return 0o644
	}
	return os.FileMode(*m) & os.ModePerm
}

// Remove unmounts and removes every volume of pod uid, and its directory;
// a pod without one is no error.
func (m *Manager) Remove(uid types.UID) error {
	pd, err := m.podDir(uid)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(pd); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// The volumes' own mounts first, each by its path; the mount table is
	// read only if something is still mounted below (someone else's
	// mount): with a thousand pods it is long, and reading it for each pod
	// made removing them cost the square of their number.
	if err := unmountVolumes(filepath.Join(pd, "volumes")); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", uid, err)
	}
	if mounted, err := anyMountBelow(pd); err != nil || mounted {
		if err := unmountAll(pd); err != nil {
			return fmt.Errorf("remove volumes of pod %s: %w", uid, err)
		}
	}
	if err := os.RemoveAll(pd); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", uid, err)
	}
	return nil
}

// Prepared lists the pods that have a directory, for the garbage
// collector of an agent restarted after a crash: those it no longer runs
// are to be Removed.
func (m *Manager) Prepared() ([]types.UID, error) {
	entries, err := os.ReadDir(m.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pods' volumes: %w", err)
	}
	var uids []types.UID
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, types.UID(e.Name()))
		}
	}
	return uids, nil
}

// WriteEtcHosts writes the pod's /etc/hosts (podspec.EtcHosts) into its
// directory, atomically, and returns its host path for
// podspec.Options.EtcHosts. Prepare comes first.
func (m *Manager) WriteEtcHosts(uid types.UID, content []byte) (string, error) {
	pd, err := m.podDir(uid)
	if err != nil {
		return "", err
	}
	p := filepath.Join(pd, "etc-hosts")
	tmp, err := os.CreateTemp(pd, ".etc-hosts-")
	if err != nil {
		return "", err
	}
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write /etc/hosts of pod %s: %w", uid, err)
	}
	return p, nil
}
