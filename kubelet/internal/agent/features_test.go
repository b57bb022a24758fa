package agent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/http/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podid"
)

// TestPodFeatures runs pods using what the agent translates for troupe,
// on one node, and checks each from its container's output or its status:
// securityContext, env and configMap and secret volumes, a memory limit
// whose OOM kill shows as OOMKilled, init containers, and one pod reaching
// another at its pod IP.
func TestPodFeatures(t *testing.T) {
	cp := controlplane.StartTest(t)
	image := daemontest.PushBusybox(t)
	n := startNode(t, cp, "troupe-f", 3, 24)
	ctx := context.Background()
	kube := cp.Client
	waitNodeReady(t, cp, 1)

	if _, err := kube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "conf"}, Data: map[string]string{"greeting": "hi from a configmap"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sec"}, StringData: map[string]string{"password": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uid, gid := int64(1000), int64(1000)
	grace := int64(1)
	mk := func(name string, policy corev1.RestartPolicy, script string, mod func(*corev1.PodSpec)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				RestartPolicy: policy, TerminationGracePeriodSeconds: &grace,
				Containers: []corev1.Container{{Name: "c", Image: image, Command: []string{"sh", "-c", script}}},
			},
		}
		if mod != nil {
			mod(&p.Spec)
		}
		if _, err := kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("web", corev1.RestartPolicyAlways, "echo hello from $(hostname) >/tmp/index.html; exec httpd -f -p 8080 -h /tmp", nil)
	mk("secure", corev1.RestartPolicyNever,
		`echo "id=$(id -u):$(id -g) env=$GREETING conf=$(cat /conf/greeting) secret=$(cat /sec/password) init=$(cat /shared/init)"`,
		func(s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &gid}
			s.Volumes = []corev1.Volume{
				{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
				{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			}
			s.InitContainers = []corev1.Container{{Name: "init", Image: image,
				Command:      []string{"sh", "-c", "echo done >/shared/init"},
				VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}}}
			c := &s.Containers[0]
			c.Env = []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}, Key: "greeting"}}}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/conf"}, {Name: "sec", MountPath: "/sec"}, {Name: "shared", MountPath: "/shared"}}
		})
	mk("rooted", corev1.RestartPolicyNever, "id -u", func(s *corev1.PodSpec) {
		s.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: new(true)}
	})
	mk("hog", corev1.RestartPolicyNever, "exec tail /dev/zero", func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	})

	get := func(name string) *corev1.Pod {
		p, err := kube.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	phase := func(name string, want corev1.PodPhase) *corev1.Pod {
		var p *corev1.Pod
		eventually(t, time.Minute, name+" "+string(want), func() (bool, string) {
			p = get(name)
			return p.Status.Phase == want, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
		return p
	}
	logs := func(p *corev1.Pod) string {
		r, err := n.d.Client.Logs(ctx, podid.Container(p.UID, "c"), client.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		return string(b)
	}

	secure := phase("secure", corev1.PodSucceeded)
	if got, want := strings.TrimSpace(logs(secure)), "id=1000:1000 env=hi from a configmap conf=hi from a configmap secret=s3cret init=done"; got != want {
		t.Errorf("secure printed %q, want %q", got, want)
	}
	// runAsNonRoot with an image whose user is root: refused, not run.
	eventually(t, time.Minute, "rooted refused", func() (bool, string) {
		p := get("rooted")
		cs := p.Status.ContainerStatuses
		ok := len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CreateContainerConfigError" &&
			strings.Contains(cs[0].State.Waiting.Message, "runAsNonRoot")
		return ok, fmt.Sprintf("%+v", cs)
	})
	hog := phase("hog", corev1.PodFailed)
	if term := hog.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "OOMKilled" {
		t.Errorf("hog: %+v, want OOMKilled", hog.Status.ContainerStatuses[0].State)
	}
	web := phase("web", corev1.PodRunning)
	if web.Status.PodIP == "" {
		t.Fatal("web has no pod IP")
	}
	client := mk("client", corev1.RestartPolicyNever, "wget -qO- http://"+web.Status.PodIP+":8080/index.html", nil)
	done := phase("client", corev1.PodSucceeded)
	if got := logs(done); !strings.Contains(got, "hello from web") {
		t.Errorf("client of %s printed %q", web.Status.PodIP, got)
	}
	_ = client
}
