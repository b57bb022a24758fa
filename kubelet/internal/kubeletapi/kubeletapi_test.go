package kubeletapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	vkapi "github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/kubeletapi"
	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

// testTimeout bounds the whole test, far below go test's.
const testTimeout = 4 * time.Minute

const nodeName = "troupe-node"

// env is a control plane, a troupe daemon and a kubelet API serving the
// daemon's containers for the node nodeName, with a pod bound to it.
type env struct {
	cp      *controlplane.ControlPlane
	d       *daemontest.Daemon
	agent   kubernetes.Interface
	pod     *corev1.Pod
	url     string // the kubelet API's https://127.0.0.1:port
	ref     string // the busybox image
	streams *kubeletapi.Streams
	// kubectlBin is the control plane's kubectl, for runs with stdio of
	// their own.
	kubectlBin string
}

func newEnv(t *testing.T, ctx context.Context) *env {
	t.Helper()
	e := &env{cp: controlplane.StartTest(t)}
	binDir, err := controlplane.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	e.kubectlBin = filepath.Join(binDir, "kubectl")
	e.d = daemontest.Start(t, daemontest.Options{Name: "kubeletapi"})
	e.streams = &kubeletapi.Streams{Client: e.d.Client}

	e.ref = daemontest.PushBusybox(t)

	// The agent's own credentials: its TokenReviews and
	// SubjectAccessReviews, its node and its pod's status go through them.
	kubeconfig, err := e.cp.NodeKubeconfig(ctx, nodeName)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if e.agent, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}

	port := e.serve(t)
	e.createNode(t, ctx, port)
	e.createPod(t, ctx)
	return e
}

// serve starts the kubelet API on a loopback port and returns the port.
func (e *env) serve(t *testing.T) int {
	t.Helper()
	ca, err := os.ReadFile(e.cp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := kubeletapi.TLSConfig("", "", ca, "127.0.0.1", nodeName)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := kubeletapi.Auth(e.agent, nodeName, ca)
	if err != nil {
		t.Fatal(err)
	}
	// What the provider does: namespace/pod/container to a troupe id.
	id := func(ctx context.Context, ns, pod, container string) (string, error) {
		p, err := e.agent.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return "", errdefs.AsNotFound(err)
		}
		return podid.Container(p.UID, container), nil
	}
	h := vkapi.PodHandler(vkapi.PodHandlerConfig{
		GetContainerLogs: func(ctx context.Context, ns, pod, container string, opts vkapi.ContainerLogOpts) (io.ReadCloser, error) {
			cid, err := id(ctx, ns, pod, container)
			if err != nil {
				return nil, err
			}
			return e.streams.Logs(ctx, cid, opts)
		},
		RunInContainer: func(ctx context.Context, ns, pod, container string, cmd []string, attach vkapi.AttachIO) error {
			cid, err := id(ctx, ns, pod, container)
			if err != nil {
				return err
			}
			return e.streams.Exec(ctx, cid, cmd, attach)
		},
		AttachToContainer: func(ctx context.Context, ns, pod, container string, attach vkapi.AttachIO) error {
			cid, err := id(ctx, ns, pod, container)
			if err != nil {
				return err
			}
			return e.streams.Attach(ctx, cid, attach)
		},
	}, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := kubeletapi.NewServer(tlsCfg, kubeletapi.Handler(auth, h))
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("kubelet API: %v", err)
		}
	})
	port := l.Addr().(*net.TCPAddr).Port
	e.url = "https://127.0.0.1:" + strconv.Itoa(port)
	return port
}

func (e *env) createNode(t *testing.T, ctx context.Context, port int) {
	t.Helper()
	nodes := e.agent.CoreV1().Nodes()
	n, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   nodeName,
		Labels: map[string]string{"kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	room := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	status := corev1.NodeStatus{
		Capacity: room, Allocatable: room,
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "TestReady", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	// The node lifecycle controller taints a new node meanwhile: a
	// conflict is retried on the node as it is then.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status = status
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// createPod makes a pod of two containers bound to the node, and starts
// them in troupe: c prints three lines and one on stderr, then sleeps; a
// echoes what it reads on stdin until its end.
func (e *env) createPod(t *testing.T, ctx context.Context) {
	t.Helper()
	pod, err := e.cp.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{
			NodeName: nodeName,
			Containers: []corev1.Container{
				{Name: "c", Image: e.ref},
				{Name: "a", Image: e.ref, Stdin: true, StdinOnce: true},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	if e.pod, err = e.agent.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := func(name string, stdin bool, script string) {
		_, err := e.d.Client.Start(ctx, podid.Container(pod.UID, name), api.StartRequest{
			Stdin: stdin,
			ImageStart: api.ImageStart{
				Image: e.ref, Pull: api.PullMissing,
				Args: []string{"sh", "-c", script},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	start("c", false, "for i in 1 2 3; do echo line $i; done; echo to-stderr >&2; exec sleep 300")
	start("a", true, "while read l; do echo got $l; done; echo bye")
	// The log is written as the init runs: wait for all four lines.
	err = within(ctx, 20*time.Second, func() error {
		out, err := e.cp.Kubectl(ctx, "logs", "p", "-c", "c")
		if err == nil && strings.Count(string(out), "\n") < 4 {
			err = fmt.Errorf("logs so far: %q", out)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKubectl(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	e := newEnv(t, ctx)
	cid := podid.Container(e.pod.UID, "c")

	t.Run("logs", func(t *testing.T) {
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"logs", "p", "-c", "c"}, "line 1\nline 2\nline 3\nto-stderr\n"},
			{[]string{"logs", "p", "-c", "c", "--tail=2"}, "line 3\nto-stderr\n"},
			{[]string{"logs", "p", "-c", "c", "--limit-bytes=9"}, "line 1\nli"},
			{[]string{"logs", "p", "-c", "c", "--since=1h"}, "line 1\nline 2\nline 3\nto-stderr\n"},
			{[]string{"logs", "p", "-c", "c", "--since-time=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "line 1\nline 2\nline 3\nto-stderr\n"},
			{[]string{"logs", "p", "-c", "c", "--since-time=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, ""},
		}
		for _, tt := range tests {
			out, err := e.cp.Kubectl(ctx, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("kubectl %s: %q, want %q", strings.Join(tt.args, " "), out, tt.want)
			}
		}
		out, err := e.cp.Kubectl(ctx, "logs", "p", "-c", "c", "--timestamps")
		if err != nil {
			t.Fatal(err)
		}
		stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z line 1\n`)
		if !stamped.Match(out) {
			t.Errorf("kubectl logs --timestamps: %q, want RFC 3339 times first", out)
		}
		if out, err := e.cp.Kubectl(ctx, "logs", "p", "-c", "c", "--previous"); err == nil {
			t.Errorf("kubectl logs --previous: no error, output %q", out)
		}
	})

	t.Run("exec", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := e.kubectl(ctx, nil, &stdout, &stderr, "exec", "p", "-c", "c", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		if code != 3 {
			t.Errorf("exit code %d, want 3 (stderr %q)", code, stderr.String())
		}
		if stdout.String() != "out\n" {
			t.Errorf("stdout %q, want %q", stdout.String(), "out\n")
		}
		if !strings.HasPrefix(stderr.String(), "err\n") {
			t.Errorf("stderr %q, want it to start with %q", stderr.String(), "err\n")
		}
		// The command runs as the container's init does.
		out, err := e.cp.Kubectl(ctx, "exec", "p", "-c", "c", "--", "sh", "-c", "id -u; pwd; hostname")
		if err != nil {
			t.Fatal(err)
		}
		if want := "0\n/\n" + cid + "\n"; string(out) != want {
			t.Errorf("exec id, pwd, hostname: %q, want %q", out, want)
		}
	})

	t.Run("exec -i", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		in := strings.NewReader("one\ntwo\n")
		code, err := e.kubectl(ctx, in, &stdout, &stderr, "exec", "-i", "p", "-c", "c", "--", "sh", "-c", "wc -l; cat; exit 0")
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || strings.TrimSpace(stdout.String()) != "2" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and 2", code, stdout.String(), stderr.String())
		}
	})

	t.Run("exec -it", func(t *testing.T) {
		script, err := exec.LookPath("script")
		if err != nil {
			t.Skip("no script(1) to give kubectl a terminal")
		}
		// script runs kubectl on a pseudo-terminal of the size stty sets;
		// kubectl passes the size on, and the exit code back. The size
		// reaches the process as a resize, which may come after it starts
		// (as with any kubelet): the command waits for it a moment.
		cmdline := `test -t 0 && echo is-a-tty; for i in $(seq 50); do [ "$(stty size)" = "33 91" ] && break; sleep 0.1; done; stty size; exit 4`
		line := fmt.Sprintf("stty cols 91 rows 33; exec %s --kubeconfig=%s exec -it p -c c -- sh -c '%s'",
			e.kubectlBin, e.cp.Kubeconfig, cmdline)
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, script, "-q", "-e", "-c", line, "/dev/null")
		cmd.Stdout, cmd.Stderr = &out, &out
		// A stdin that stays open: at its end script would type an end of
		// file into the terminal, which the remote one echoes.
		stdin, keep, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer keep.Close()
		cmd.Stdin = stdin
		err = cmd.Run()
		stdin.Close()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 4 {
			t.Errorf("script: %v, want exit code 4; output %q", err, out.String())
		}
		if !strings.Contains(out.String(), "is-a-tty\r\n33 91\r\n") {
			t.Errorf("output %q, want is-a-tty and the size 33 91 through the terminal", out.String())
		}
	})

	t.Run("attach -i", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		in := strings.NewReader("hello\nworld\n")
		code, err := e.kubectl(ctx, in, &stdout, &stderr, "attach", "-i", "p", "-c", "a")
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || !strings.Contains(stdout.String(), "got hello\ngot world\nbye\n") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := e.streams.Logs(ctx, podid.Container(e.pod.UID, "nope"), vkapi.ContainerLogOpts{})
		if !errdefs.IsNotFound(err) {
			t.Errorf("logs of an unknown container: %v, want NotFound", err)
		}
		err = e.streams.Exec(ctx, "nope", []string{"true"}, nil)
		if !errdefs.IsNotFound(err) {
			t.Errorf("exec in an unknown container: %v, want NotFound", err)
		}
		err = e.streams.Attach(ctx, "nope", nil)
		if !errdefs.IsNotFound(err) {
			t.Errorf("attach to an unknown container: %v, want NotFound", err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		e.testRefused(t, ctx)
	})

	// Last: it stops the container.
	t.Run("logs -f", func(t *testing.T) {
		var out syncBuffer
		cmd := e.kubectlCmd(ctx, nil, &out, &out, "logs", "-f", "p", "-c", "c")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if err := within(ctx, 20*time.Second, func() error {
			if !strings.Contains(out.String(), "to-stderr\n") {
				return fmt.Errorf("kubectl logs -f so far: %q", out.String())
			}
			return nil
		}); err != nil {
			cmd.Process.Kill()
			<-done
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("kubectl logs -f ended while the container runs: %v, %q", err, out.String())
		case <-time.After(time.Second):
		}
		// A line written now comes too.
		late, err := e.d.Client.Exec(ctx, cid, api.ExecRequest{Args: []string{"sh", "-c", "echo late > /proc/1/fd/1"}})
		if err != nil {
			t.Fatal(err)
		}
		if exit, err := e.d.Client.Wait(ctx, cid, late.Pid); err != nil || exit.ExitCode != 0 {
			t.Fatalf("echo late into the log: %+v, %v", exit, err)
		}
		if err := e.d.Client.Kill(ctx, cid, 9); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kubectl logs -f: %v; output %q", err, out.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("kubectl logs -f still runs 20s after the container stopped; output %q", out.String())
		}
		if want := "line 1\nline 2\nline 3\nto-stderr\nlate\n"; out.String() != want {
			t.Errorf("kubectl logs -f: %q, want %q", out.String(), want)
		}
	})
}

// testRefused shows who the kubelet API turns away: callers without
// credentials, with a certificate of another CA (401), and users of the
// cluster without the right on the node (403); the admin is let through.
func (e *env) testRefused(t *testing.T, ctx context.Context) {
	caPEM, err := os.ReadFile(e.cp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	nobodyCert, nobodyKey, err := e.cp.ClientCert("nobody", "nobodies")
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := tls.X509KeyPair(nobodyCert, nobodyKey)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate that claims system:masters, from a CA of its own.
	forged := foreignClientCert(t, "admin", "system:masters")
	path := "/containerLogs/default/p/c"
	tests := []struct {
		name  string
		cert  *tls.Certificate
		token string
		want  int
	}{
		{name: "no credentials", want: http.StatusUnauthorized},
		{name: "certificate of another CA", cert: &forged, want: http.StatusUnauthorized},
		{name: "unknown token", token: "not-a-token", want: http.StatusUnauthorized},
		{name: "cluster user without the right", cert: &nobody, want: http.StatusForbidden},
		{name: "admin's token", token: e.cp.Config.BearerToken, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(caPEM)
			tlsCfg := &tls.Config{InsecureSkipVerify: true} // the serving certificate is self-signed
			if tt.cert != nil {
				tlsCfg.Certificates = []tls.Certificate{*tt.cert}
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
			defer c.CloseIdleConnections()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s: %s %q, want %d", path, resp.Status, body, tt.want)
			}
		})
	}
}

// foreignClientCert is a client certificate for cn in orgs from a CA the
// cluster does not know.
func foreignClientCert(t *testing.T, cn string, orgs ...string) tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "foreign-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// kubectl runs kubectl as the admin with the given stdio and returns its
// exit code; err is for a kubectl that could not run.
func (e *env) kubectl(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args ...string) (int, error) {
	err := e.kubectlCmd(ctx, stdin, stdout, stderr, args...).Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

func (e *env) kubectlCmd(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.kubectlBin, append([]string{"--kubeconfig=" + e.cp.Kubeconfig}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	return cmd
}

// within calls f until it succeeds or d passes.
func within(ctx context.Context, d time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s: %w", d, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// syncBuffer is a bytes.Buffer a command writes to while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
