package podspec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/podns"
)

// FieldError is a field of the pod that troupe cannot honour, or that is
// wrong.
type FieldError struct {
	// Field is the field's path in the pod, "spec.containers[0].image".
	Field string
	// Reason says why.
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Volumes are a pod's volumes as the host has them: each volume's name to
// the host directory that is bound into the containers that mount it.
type Volumes map[string]string

// cpuPeriod is the CFS period the CPU limits are made for, the kernel's
// default, as the kubelet's.
const cpuPeriod = 100000

// maxHostname is the kernel's bound on a host name.
const maxHostname = 63

// Hostname is the pod's host name: spec.hostname, or the pod's name cut to
// a host name's 63 bytes, as the kubelet makes it.
func Hostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	h := pod.Name
	if len(h) > maxHostname {
		h = strings.TrimRight(h[:maxHostname], "-.")
	}
	return h
}

// Join is the join of a troupe start that puts its container in the
// namespaces of sandbox sb.
func Join(sb podns.Sandbox) api.Join {
	return api.Join{Network: sb.Network, IPC: sb.IPC, UTS: sb.UTS}
}

// SandboxHostname is the host name of the pod's sandbox, which holds its
// network, IPC and UTS namespaces for its containers to join. A pod that
// cannot run at all (CheckPod) is an error.
func SandboxHostname(pod *corev1.Pod) (string, error) {
	if err := CheckPod(pod); err != nil {
		return "", err
	}
	return Hostname(pod), nil
}

// CheckPod refuses what of the pod's own spec troupe cannot honour.
func CheckPod(pod *corev1.Pod) error {
	s := &pod.Spec
	switch {
	case s.HostNetwork:
		return fieldErr("spec.hostNetwork", "not supported: a pod has its own network namespace")
	case s.HostPID:
		return fieldErr("spec.hostPID", "not supported")
	case s.HostIPC:
		return fieldErr("spec.hostIPC", "not supported")
	case s.ShareProcessNamespace != nil && *s.ShareProcessNamespace:
		return fieldErr("spec.shareProcessNamespace", "not supported: troupe does not share a pid namespace between containers")
	case s.HostUsers != nil && !*s.HostUsers:
		return fieldErr("spec.hostUsers", "user namespaces are not supported")
	case s.OS != nil && s.OS.Name != corev1.Linux:
		return fieldErr("spec.os.name", "%s: troupe runs Linux containers", s.OS.Name)
	case s.Resources != nil && (len(s.Resources.Limits) > 0 || len(s.Resources.Requests) > 0):
		return fieldErr("spec.resources", "pod-level resources are not supported; set them on the containers")
	}
	if sc := s.SecurityContext; sc != nil {
		const f = "spec.securityContext"
		switch {
		case len(sc.Sysctls) > 0:
			return fieldErr(f+".sysctls", "not supported")
		case len(sc.SupplementalGroups) > 0:
			return fieldErr(f+".supplementalGroups", "not supported: troupe starts a container's process with no additional groups")
		}
		if err := checkProfiles(f, sc.SELinuxOptions, sc.SeccompProfile, sc.AppArmorProfile); err != nil {
			return err
		}
	}
	return nil
}

// checkProfiles refuses security profiles other than the runtime's own.
func checkProfiles(f string, se *corev1.SELinuxOptions, sc *corev1.SeccompProfile, aa *corev1.AppArmorProfile) error {
	if se != nil && *se != (corev1.SELinuxOptions{}) {
		return fieldErr(f+".seLinuxOptions", "SELinux is not supported")
	}
	if sc != nil && sc.Type != corev1.SeccompProfileTypeRuntimeDefault {
		return fieldErr(f+".seccompProfile", "only RuntimeDefault is supported (troupe's default filter), not %s", sc.Type)
	}
	// troupe applies no AppArmor profile: Unconfined is what it does, and
	// the runtime's default is none.
	if aa != nil && aa.Type == corev1.AppArmorProfileTypeLocalhost {
		return fieldErr(f+".appArmorProfile", "AppArmor profiles are not supported")
	}
	return nil
}

// Options are what a container's start needs besides the pod.
type Options struct {
	// Sandbox is the pod's sandbox: the container joins its namespaces.
	Sandbox podns.Sandbox
	// Volumes are the pod's volumes on the host.
	Volumes Volumes
	// EtcHosts, if set, is the host file bound on the container's
	// /etc/hosts (unless the container mounts a volume there).
	EtcHosts string
	// Auth authenticates the image's pull (PullAuth).
	Auth *api.RegistryAuth
}

// Container is the start of the pod's container c (one of its containers
// or init containers), joined to the sandbox's namespaces. A field troupe
// cannot honour is a *FieldError.
func Container(pod *corev1.Pod, c *corev1.Container, o Options) (api.StartRequest, error) {
	if err := CheckPod(pod); err != nil {
		return api.StartRequest{}, err
	}
	f := containerField(pod, c.Name)
	if c.Image == "" {
		return api.StartRequest{}, fieldErr(f+".image", "required")
	}
	if o.Sandbox.Network == "" || o.Sandbox.IPC == "" || o.Sandbox.UTS == "" {
		return api.StartRequest{}, fmt.Errorf("container %s: no sandbox to join", c.Name)
	}
	env, err := environment(c, f)
	if err != nil {
		return api.StartRequest{}, err
	}
	vars := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	// A joiner's start names no host name, so troupe sets no HOSTNAME;
	// Kubernetes' runtimes do (after the kubelet's expansion).
	if _, ok := vars["HOSTNAME"]; !ok {
		env = append(env, "HOSTNAME="+Hostname(pod))
		slices.Sort(env)
	}
	req := api.StartRequest{
		Join:     new(Join(o.Sandbox)),
		Stdin:    c.Stdin,
		Terminal: c.TTY,
		ImageStart: api.ImageStart{
			Image: c.Image,
			Pull:  PullPolicy(c),
			Auth:  o.Auth,
			Env:   env,
			Cwd:   c.WorkingDir,
		},
	}
	if len(c.Command) > 0 {
		ep := expandAll(c.Command, vars)
		req.Entrypoint = &ep
	}
	if len(c.Args) > 0 {
		req.Args = expandAll(c.Args, vars)
	}
	if c.WorkingDir != "" && !filepath.IsAbs(c.WorkingDir) {
		return api.StartRequest{}, fieldErr(f+".workingDir", "%q: must be an absolute path", c.WorkingDir)
	}
	if err := checkContainer(c, f); err != nil {
		return api.StartRequest{}, err
	}
	if err := security(pod, c, f, &req.ImageStart); err != nil {
		return api.StartRequest{}, err
	}
	if err := resources(c, f, &req.ImageStart); err != nil {
		return api.StartRequest{}, err
	}
	if req.Mounts, err = mounts(c, f, o, vars); err != nil {
		return api.StartRequest{}, err
	}
	return req, nil
}

// containerField is the path of container name in the pod.
func containerField(pod *corev1.Pod, name string) string {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return fmt.Sprintf("spec.initContainers[%d]", i)
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return fmt.Sprintf("spec.containers[%d]", i)
		}
	}
	return "container " + strconv.Quote(name)
}

// PullPolicy is troupe's pull policy for the container's
// imagePullPolicy, defaulted as Kubernetes defaults it: Always for an image
// tagged latest or not tagged, IfNotPresent otherwise (an image named by
// digest only included).
func PullPolicy(c *corev1.Container) api.PullPolicy {
	p := c.ImagePullPolicy
	if p == "" {
		p = corev1.PullIfNotPresent
		if tag := tagOf(c.Image); tag == "latest" || (tag == "" && !strings.Contains(c.Image, "@")) {
			p = corev1.PullAlways
		}
	}
	switch p {
	case corev1.PullAlways:
		return api.PullAlways
	case corev1.PullNever:
		return api.PullNever
	default:
		return api.PullMissing
	}
}

// tagOf is the tag of an image reference, "" if none.
func tagOf(image string) string {
	name, _, _ := strings.Cut(image, "@")
	last := name[strings.LastIndexByte(name, '/')+1:]
	_, tag, _ := strings.Cut(last, ":")
	return tag
}

// environment is the container's env as KEY=value, sorted by key (the
// order virtual-kubelet's resolution leaves is a map's).
func environment(c *corev1.Container, f string) ([]string, error) {
	if len(c.EnvFrom) > 0 {
		return nil, fieldErr(f+".envFrom", "not resolved (virtual-kubelet resolves it before the provider sees the pod)")
	}
	env := make([]string, 0, len(c.Env))
	seen := map[string]int{}
	for i, e := range c.Env {
		if e.ValueFrom != nil {
			return nil, fieldErr(fmt.Sprintf("%s.env[%d].valueFrom", f, i), "not resolved (virtual-kubelet resolves it before the provider sees the pod)")
		}
		if e.Name == "" || strings.ContainsAny(e.Name, "=\x00") {
			return nil, fieldErr(fmt.Sprintf("%s.env[%d].name", f, i), "%q: not a variable name", e.Name)
		}
		if j, ok := seen[e.Name]; ok {
			env[j] = e.Name + "=" + e.Value // the last one wins, as in the kubelet
			continue
		}
		seen[e.Name] = len(env)
		env = append(env, e.Name+"="+e.Value)
	}
	slices.Sort(env)
	return env, nil
}

func expandAll(in []string, vars map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

// checkContainer refuses the container's fields that troupe cannot honour
// and that are not of its security context, resources or mounts.
func checkContainer(c *corev1.Container, f string) error {
	if len(c.VolumeDevices) > 0 {
		return fieldErr(f+".volumeDevices", "block devices are not supported")
	}
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		return fieldErr(f+".lifecycle.postStart", "not supported")
	}
	return nil
}

// security applies the pod's and the container's security contexts, the
// container's overriding the pod's.
func security(pod *corev1.Pod, c *corev1.Container, f string, s *api.ImageStart) error {
	var uid, gid *int64
	var nonRoot *bool
	var fsGroup *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid, nonRoot, fsGroup = psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot, psc.FSGroup
	}
	sf := f + ".securityContext"
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		switch {
		case sc.Privileged != nil && *sc.Privileged:
			return fieldErr(sf+".privileged", "privileged containers are not supported; add the capabilities the container needs instead")
		case sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation:
			return fieldErr(sf+".allowPrivilegeEscalation", "not supported: troupe always sets no_new_privs")
		case sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount:
			return fieldErr(sf+".procMount", "Unmasked is not supported")
		}
		if err := checkProfiles(sf, sc.SELinuxOptions, sc.SeccompProfile, sc.AppArmorProfile); err != nil {
			return err
		}
		s.ReadOnlyRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if caps := sc.Capabilities; caps != nil {
			for _, c := range caps.Add {
				s.CapAdd = append(s.CapAdd, string(c))
			}
			for _, c := range caps.Drop {
				s.CapDrop = append(s.CapDrop, string(c))
			}
		}
	}
	switch {
	case uid == nil && gid != nil:
		return fieldErr(sf+".runAsGroup", "not supported without runAsUser: the image's user is not known to the agent")
	case uid != nil && (*uid < 0 || *uid > 1<<31-2):
		return fieldErr(sf+".runAsUser", "%d: out of range", *uid)
	case gid != nil && (*gid < 0 || *gid > 1<<31-2):
		return fieldErr(sf+".runAsGroup", "%d: out of range", *gid)
	case nonRoot != nil && *nonRoot && uid != nil && *uid == 0:
		return fieldErr(sf+".runAsNonRoot", "the container would run as root (runAsUser 0)")
	case uid != nil && gid != nil:
		s.User = fmt.Sprintf("%d:%d", *uid, *gid)
	case uid != nil:
		s.User = strconv.FormatInt(*uid, 10)
	}
	// The kubelet gives the container fsGroup as an additional group;
	// troupe gives none, so fsGroup's files are the container's only when
	// it is the container's own group.
	if fsGroup != nil && (gid == nil || *gid != *fsGroup) {
		return fieldErr("spec.securityContext.fsGroup", "supported only with runAsGroup equal to it: troupe starts a container's process with no additional groups")
	}
	return nil
}

// CheckNonRoot refuses a container that runAsNonRoot asks to run as
// non-root but whose init runs as uid 0: the check Container cannot make
// when the user is the image's. The provider calls it with the started
// container's init uid (api.Container.Processes[0].User.UID) and, on an
// error, deletes the container and reports it.
func CheckNonRoot(pod *corev1.Pod, c *corev1.Container, uid int) error {
	var nonRoot *bool
	if psc := pod.Spec.SecurityContext; psc != nil {
		nonRoot = psc.RunAsNonRoot
	}
	if sc := c.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot != nil && *nonRoot && uid == 0 {
		return fieldErr(containerField(pod, c.Name)+".securityContext.runAsNonRoot", "the image runs as root")
	}
	return nil
}

// resources turns the container's limits and requests into cgroup limits:
// limits.memory the memory limit, limits.cpu a CFS quota, requests.cpu the
// CPU shares (1024 a CPU, at least 2 as the kubelet makes them, also when
// nothing is requested).
func resources(c *corev1.Container, f string, s *api.ImageStart) error {
	rf := f + ".resources"
	for _, l := range []struct {
		field string
		list  corev1.ResourceList
	}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
		for name := range l.list {
			switch name {
			case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			default:
				return fieldErr(fmt.Sprintf("%s.%s[%s]", rf, l.field, name), "not supported")
			}
		}
	}
	if len(c.Resources.Claims) > 0 {
		return fieldErr(rf+".claims", "dynamic resources are not supported")
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		m := q.Value()
		if m < runtime.MinMemory {
			return fieldErr(rf+".limits.memory", "%s: troupe needs at least %d MiB", q.String(), runtime.MinMemory>>20)
		}
		s.Memory = m
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		// The kernel's least quota is 1 ms, as the kubelet's.
		s.CPUQuota = max(q.MilliValue()*cpuPeriod/1000, 1000)
		s.CPUPeriod = cpuPeriod
	}
	s.CPUShares = shares(c.Resources.Requests[corev1.ResourceCPU])
	return nil
}

func shares(q resource.Quantity) uint64 {
	s := q.MilliValue() * 1024 / 1000
	return uint64(min(max(s, runtime.MinCPUShares), runtime.MaxCPUShares))
}

// mounts are the container's volume mounts, each a bind of its volume's
// host directory (or of a path below it, with subPath), and the pod's
// /etc/hosts.
func mounts(c *corev1.Container, f string, o Options, vars map[string]string) ([]api.Mount, error) {
	var ms []api.Mount
	hosts := false
	for i, vm := range c.VolumeMounts {
		mf := fmt.Sprintf("%s.volumeMounts[%d]", f, i)
		src, ok := o.Volumes[vm.Name]
		if !ok {
			return nil, fieldErr(mf+".name", "volume %q is not prepared on this node", vm.Name)
		}
		if vm.MountPropagation != nil && *vm.MountPropagation != corev1.MountPropagationNone {
			return nil, fieldErr(mf+".mountPropagation", "%s is not supported", *vm.MountPropagation)
		}
		if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly == corev1.RecursiveReadOnlyEnabled {
			return nil, fieldErr(mf+".recursiveReadOnly", "Enabled is not supported")
		}
		if !filepath.IsAbs(vm.MountPath) {
			return nil, fieldErr(mf+".mountPath", "%q: must be an absolute path", vm.MountPath)
		}
		sub, subField := vm.SubPath, mf+".subPath"
		if vm.SubPathExpr != "" {
			sub, subField = expand(vm.SubPathExpr, vars), mf+".subPathExpr"
		}
		if sub != "" {
			var err error
			if src, err = subPath(src, sub); err != nil {
				return nil, fieldErr(subField, "%v", err)
			}
		}
		dest := filepath.Clean(vm.MountPath)
		hosts = hosts || dest == "/etc/hosts"
		ms = append(ms, api.Mount{Type: "bind", Source: src, Destination: dest, ReadOnly: vm.ReadOnly})
	}
	if o.EtcHosts != "" && !hosts {
		ms = append(ms, api.Mount{Type: "bind", Source: o.EtcHosts, Destination: "/etc/hosts"})
	}
	return ms, nil
}

// subPath is the host path of sub below the volume's directory vol. sub
// must be a relative path that stays in the volume, every symlink on the
// way resolved (a container may have left a symlink to "/" in an
// emptyDir); what does not exist is made a directory, as the kubelet does.
// A symlink swapped in between this check and the daemon's mount escapes
// it.
func subPath(vol, sub string) (string, error) {
	if filepath.IsAbs(sub) || !filepath.IsLocal(sub) {
		return "", fmt.Errorf("%q: must be a relative path within the volume", sub)
	}
	root, err := filepath.EvalSymlinks(vol)
	if err != nil {
		return "", err
	}
	cur := root
	for _, part := range strings.Split(filepath.Clean(sub), "/") {
		next := filepath.Join(cur, part)
		if _, err := os.Lstat(next); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", err
			}
		} else if err != nil {
			return "", err
		}
		if cur, err = filepath.EvalSymlinks(next); err != nil {
			return "", err
		}
		if cur != root && !strings.HasPrefix(cur, root+"/") {
			return "", fmt.Errorf("%q leaves its volume (it resolves to %s)", sub, cur)
		}
	}
	return cur, nil
}
