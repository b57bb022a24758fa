package podspec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime/podns"
)

func TestSandboxHostname(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b"
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"pod name", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}}, "web-1"},
		{"spec.hostname", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: corev1.PodSpec{Hostname: "h"}}, "h"},
		{"long name cut", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: long}}, strings.Repeat("a", 62)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SandboxHostname(&tt.pod)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSandboxRefused(t *testing.T) {
	p := testPod(func(p *corev1.Pod, c *corev1.Container) { p.Spec.HostNetwork = true })
	var fe *FieldError
	if _, err := SandboxHostname(p); !errors.As(err, &fe) || fe.Field != "spec.hostNetwork" {
		t.Errorf("err = %v", err)
	}
}

func TestPullPolicy(t *testing.T) {
	tests := []struct {
		image  string
		policy corev1.PullPolicy
		want   api.PullPolicy
	}{
		{"busybox", "", api.PullAlways},
		{"busybox:latest", "", api.PullAlways},
		{"busybox:1.36", "", api.PullMissing},
		{"localhost:5000/busybox", "", api.PullAlways},
		{"localhost:5000/busybox:2", "", api.PullMissing},
		{"busybox@sha256:0123", "", api.PullMissing},
		{"busybox:latest@sha256:0123", "", api.PullAlways},
		{"busybox:1", corev1.PullAlways, api.PullAlways},
		{"busybox", corev1.PullIfNotPresent, api.PullMissing},
		{"busybox", corev1.PullNever, api.PullNever},
	}
	for _, tt := range tests {
		if got := PullPolicy(&corev1.Container{Image: tt.image, ImagePullPolicy: tt.policy}); got != tt.want {
			t.Errorf("%s %q: got %s, want %s", tt.image, tt.policy, got, tt.want)
		}
	}
}

// testPod is a pod with one container "app", which each case changes.
func testPod(change func(p *corev1.Pod, c *corev1.Container)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "reg.example/app:1"}}},
	}
	if change != nil {
		change(p, &p.Spec.Containers[0])
	}
	return p
}

func TestContainer(t *testing.T) {
	vol := t.TempDir()
	if err := os.MkdirAll(filepath.Join(vol, "data", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(vol, "data", "escape")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(vol, "data")
	vols := Volumes{"data": data, "cfg": filepath.Join(vol, "cfg")}
	sandbox := podns.Sandbox{Network: "/run/sb/uid-1/net", IPC: "/run/sb/uid-1/ipc", UTS: "/run/sb/uid-1/uts"}
	join := &api.Join{Network: "/run/sb/uid-1/net", IPC: "/run/sb/uid-1/ipc", UTS: "/run/sb/uid-1/uts"}
	base := func(change func(r *api.StartRequest)) api.StartRequest {
		r := api.StartRequest{Join: join, ImageStart: api.ImageStart{Image: "reg.example/app:1", Pull: api.PullMissing,
			Env: []string{"HOSTNAME=p"}, CPUShares: 2}}
		if change != nil {
			change(&r)
		}
		return r
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		opts func(o *Options)
		want api.StartRequest
		// errField, if set, is the field of the FieldError expected.
		errField string
	}{
		{name: "minimal", pod: testPod(nil), want: base(nil)},
		{name: "command alone drops CMD", pod: testPod(func(p *corev1.Pod, c *corev1.Container) { c.Command = []string{"sh", "-c"} }),
			want: base(func(r *api.StartRequest) { r.Entrypoint = &[]string{"sh", "-c"} })},
		{name: "args alone keep ENTRYPOINT", pod: testPod(func(p *corev1.Pod, c *corev1.Container) { c.Args = []string{"x"} }),
			want: base(func(r *api.StartRequest) { r.Args = []string{"x"} })},
		{name: "expansion in command and args, env sorted and kept as given",
			pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
				c.Env = []corev1.EnvVar{{Name: "Z", Value: "z$(A)"}, {Name: "A", Value: "a"}, {Name: "A", Value: "a2"}}
				c.Command = []string{"echo", "$(A)", "$$(A)", "$(NONE)"}
				c.Args = []string{"$(Z)"}
			}),
			want: base(func(r *api.StartRequest) {
				r.Env = []string{"A=a2", "HOSTNAME=p", "Z=z$(A)"}
				r.Entrypoint = &[]string{"echo", "a2", "$(A)", "$(NONE)"}
				r.Args = []string{"z$(A)"}
			})},
		{name: "HOSTNAME given is kept, not expanded from", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "HOSTNAME", Value: "mine"}}
			c.Args = []string{"$(HOSTNAME)"}
		}), want: base(func(r *api.StartRequest) { r.Env, r.Args = []string{"HOSTNAME=mine"}, []string{"mine"} })},
		{name: "HOSTNAME not a variable of the expansion", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Args = []string{"$(HOSTNAME)"}
		}), want: base(func(r *api.StartRequest) { r.Args = []string{"$(HOSTNAME)"} })},
		{name: "workingDir, stdin, tty, auth", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.WorkingDir, c.Stdin, c.TTY = "/srv", true, true
		}), opts: func(o *Options) { o.Auth = &api.RegistryAuth{Username: "u"} },
			want: base(func(r *api.StartRequest) {
				r.Cwd, r.Stdin, r.Terminal, r.Auth = "/srv", true, true, &api.RegistryAuth{Username: "u"}
			})},
		{name: "relative workingDir", pod: testPod(func(p *corev1.Pod, c *corev1.Container) { c.WorkingDir = "srv" }),
			errField: "spec.containers[0].workingDir"},
		{name: "pod user and group", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](3000), RunAsNonRoot: ptr.To(true)}
		}), want: base(func(r *api.StartRequest) { r.User = "1000:3000" })},
		{name: "container user overrides pod", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](7), ReadOnlyRootFilesystem: ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}}}
		}), want: base(func(r *api.StartRequest) {
			r.User, r.ReadOnlyRoot, r.CapAdd, r.CapDrop = "7", true, []string{"NET_ADMIN"}, []string{"ALL"}
		})},
		{name: "fsGroup equal to runAsGroup", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1), RunAsGroup: ptr.To[int64](2), FSGroup: ptr.To[int64](2)}
		}), want: base(func(r *api.StartRequest) { r.User = "1:2" })},
		{name: "fsGroup other than the group", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1), FSGroup: ptr.To[int64](2)}
		}), errField: "spec.securityContext.fsGroup"},
		{name: "runAsNonRoot with root", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)}
		}), errField: "spec.containers[0].securityContext.runAsNonRoot"},
		{name: "runAsGroup alone", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{RunAsGroup: ptr.To[int64](5)}
		}), errField: "spec.containers[0].securityContext.runAsGroup"},
		{name: "privileged", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}), errField: "spec.containers[0].securityContext.privileged"},
		{name: "allowPrivilegeEscalation", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}
		}), errField: "spec.containers[0].securityContext.allowPrivilegeEscalation"},
		{name: "seccomp unconfined", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		}), errField: "spec.containers[0].securityContext.seccompProfile"},
		{name: "selinux", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Level: "s0"}}
		}), errField: "spec.securityContext.seLinuxOptions"},
		{name: "supplementalGroups", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SupplementalGroups: []int64{5}}
		}), errField: "spec.securityContext.supplementalGroups"},
		{name: "hostNetwork", pod: testPod(func(p *corev1.Pod, c *corev1.Container) { p.Spec.HostNetwork = true }),
			errField: "spec.hostNetwork"},
		{name: "windows", pod: testPod(func(p *corev1.Pod, c *corev1.Container) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }),
			errField: "spec.os.name"},
		{name: "pod-level resources", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
		}), errField: "spec.resources"},
		{name: "shareProcessNamespace", pod: testPod(func(p *corev1.Pod, c *corev1.Container) { p.Spec.ShareProcessNamespace = ptr.To(true) }),
			errField: "spec.shareProcessNamespace"},
		{name: "postStart", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}}}
		}), errField: "spec.containers[0].lifecycle.postStart"},
		{name: "ignored fields", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}}}
			c.TerminationMessagePath = "/dev/termination-log"
		}), want: base(nil)},
		{name: "resources", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Resources = corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi"), corev1.ResourceCPU: resource.MustParse("1500m"),
					corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			}
		}), want: base(func(r *api.StartRequest) {
			r.Memory, r.CPUQuota, r.CPUPeriod, r.CPUShares = 128<<20, 150000, 100000, 256
		})},
		{name: "tiny cpu", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m")},
			}
		}), want: base(func(r *api.StartRequest) { r.CPUQuota, r.CPUPeriod, r.CPUShares = 1000, 100000, 2 })},
		{name: "memory too small", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Mi")}
		}), errField: "spec.containers[0].resources.limits.memory"},
		{name: "gpu", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
		}), errField: "spec.containers[0].resources.limits[nvidia.com/gpu]"},
		{name: "mounts and hosts", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "D", Value: "sub"}}
			c.VolumeMounts = []corev1.VolumeMount{
				{Name: "data", MountPath: "/data"},
				{Name: "cfg", MountPath: "/etc/cfg/", ReadOnly: true},
				{Name: "data", MountPath: "/sub", SubPath: "sub"},
				{Name: "data", MountPath: "/new", SubPath: "new/dir"},
				{Name: "data", MountPath: "/expr", SubPathExpr: "$(D)"},
			}
		}), opts: func(o *Options) { o.EtcHosts = "/host/hosts" },
			want: base(func(r *api.StartRequest) {
				r.Env = []string{"D=sub", "HOSTNAME=p"}
				r.Mounts = []api.Mount{
					{Type: "bind", Source: data, Destination: "/data"},
					{Type: "bind", Source: filepath.Join(vol, "cfg"), Destination: "/etc/cfg", ReadOnly: true},
					{Type: "bind", Source: filepath.Join(data, "sub"), Destination: "/sub"},
					{Type: "bind", Source: filepath.Join(data, "new", "dir"), Destination: "/new"},
					{Type: "bind", Source: filepath.Join(data, "sub"), Destination: "/expr"},
					{Type: "bind", Source: "/host/hosts", Destination: "/etc/hosts"},
				}
			})},
		{name: "a volume on /etc/hosts replaces the pod's", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/hosts"}}
		}), opts: func(o *Options) { o.EtcHosts = "/host/hosts" },
			want: base(func(r *api.StartRequest) {
				r.Mounts = []api.Mount{{Type: "bind", Source: filepath.Join(vol, "cfg"), Destination: "/etc/hosts"}}
			})},
		{name: "unknown volume", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}
		}), errField: "spec.containers[0].volumeMounts[0].name"},
		{name: "subPath escaping by ..", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "../cfg"}}
		}), errField: "spec.containers[0].volumeMounts[0].subPath"},
		{name: "subPath escaping by a symlink", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "escape/etc"}}
		}), errField: "spec.containers[0].volumeMounts[0].subPath"},
		{name: "mount propagation", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/x", MountPropagation: ptr.To(corev1.MountPropagationBidirectional)}}
		}), errField: "spec.containers[0].volumeMounts[0].mountPropagation"},
		{name: "envFrom left", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.EnvFrom = []corev1.EnvFromSource{{Prefix: "X"}}
		}), errField: "spec.containers[0].envFrom"},
		{name: "valueFrom left", pod: testPod(func(p *corev1.Pod, c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{}}}
		}), errField: "spec.containers[0].env[0].valueFrom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Sandbox: sandbox, Volumes: vols}
			if tt.opts != nil {
				tt.opts(&o)
			}
			got, err := Container(tt.pod, &tt.pod.Spec.Containers[0], o)
			if tt.errField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.errField {
					t.Fatalf("err = %v, want a FieldError of %s", err, tt.errField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestContainerFieldOfInit(t *testing.T) {
	p := testPod(func(p *corev1.Pod, c *corev1.Container) {
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "x:1", WorkingDir: "rel"}}
	})
	_, err := Container(p, &p.Spec.InitContainers[0], Options{Sandbox: podns.Sandbox{Network: "/n", IPC: "/i", UTS: "/u"}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.initContainers[0].workingDir" {
		t.Fatalf("err = %v", err)
	}
}

func TestEtcHosts(t *testing.T) {
	p := testPod(func(p *corev1.Pod, c *corev1.Container) {
		p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.9.9.9", Hostnames: []string{"a", "b"}}}
	})
	got := string(EtcHosts(p, []string{"10.1.0.5"}))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.1.0.5\tp\n", "10.9.9.9\ta\tb\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	p.Spec.Hostname, p.Spec.Subdomain = "h", "sub"
	if got := string(EtcHosts(p, []string{"10.1.0.5"})); !strings.Contains(got, "10.1.0.5\th.sub.ns.svc.cluster.local\th\n") {
		t.Errorf("subdomain: %s", got)
	}
}

func TestCheckNonRoot(t *testing.T) {
	tests := []struct {
		name    string
		pod     *corev1.Pod
		uid     int
		wantErr bool
	}{
		{"unset, root", testPod(nil), 0, false},
		{"pod asks, root", testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
		}), 0, true},
		{"pod asks, not root", testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
		}), 65534, false},
		{"container overrides pod", testPod(func(p *corev1.Pod, c *corev1.Container) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			c.SecurityContext = &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}
		}), 0, false},
	}
	for _, tt := range tests {
		err := CheckNonRoot(tt.pod, &tt.pod.Spec.Containers[0], tt.uid)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}
