package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/kubelet/internal/rbac"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	"golang.org/x/sys/unix"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes release of the control plane: the one
// hack/kube-build/go.mod pins (a test checks), and so the directory
// hack/kube-binaries.sh builds into. client-go in this module's go.mod is
// its v0 twin.
const Version = "v1.37.2"

// Binaries are the programs of Version that Start needs in the binary
// directory; kubectl is for Kubectl and for people.
var Binaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}

// serviceCIDR is the range of cluster IPs. Nothing routes it: it is a value
// the API server hands out, and its first address is the kubernetes
// service's, which the serving certificate names.
const serviceCIDR = "10.96.0.0/24"

var kubernetesServiceIP = net.IPv4(10, 96, 0, 1)

// stopGrace is how long a process has after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Options locate the programs. The zero value finds them as the package
// doc says.
type Options struct {
	// BinDir holds the Kubernetes binaries; empty: DefaultBinDir().
	BinDir string
	// Etcd is the etcd binary; empty: DefaultEtcd().
	Etcd string
}

// DefaultBinDir is where hack/kube-binaries.sh builds Version, unless
// TROUPE_KUBE_BIN names another directory.
func DefaultBinDir() (string, error) {
	if d := os.Getenv("TROUPE_KUBE_BIN"); d != "" {
		return d, nil
	}
	cache := os.Getenv("TROUPE_KUBE_CACHE")
	if cache == "" {
		// os.UserCacheDir is the script's ${XDG_CACHE_HOME:-$HOME/.cache}.
		user, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find the kube binaries: %w", err)
		}
		cache = filepath.Join(user, "troupe-kube")
	}
	return filepath.Join(cache, Version), nil
}

// DefaultEtcd is $TROUPE_ETCD, else etcd on PATH (Debian's etcd-server).
func DefaultEtcd() (string, error) {
	if p := os.Getenv("TROUPE_ETCD"); p != "" {
		return p, nil
	}
	return exec.LookPath("etcd")
}

// Missing fills in o's defaults and returns what is missing to start a
// control plane with it, one sentence each naming the path and how to get
// it; none when all is there.
func (o *Options) Missing() []string {
	var missing []string
	if o.BinDir == "" {
		d, err := DefaultBinDir()
		if err != nil {
			missing = append(missing, err.Error())
		}
		o.BinDir = d
	}
	if o.BinDir != "" {
		var bins []string
		for _, b := range Binaries {
			if fi, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil || fi.Mode()&0o111 == 0 {
				bins = append(bins, b)
			}
		}
		if len(bins) > 0 {
			missing = append(missing, fmt.Sprintf("%s in %s (make kube-binaries builds them)", strings.Join(bins, ", "), o.BinDir))
		}
	}
	if o.Etcd == "" {
		p, err := DefaultEtcd()
		if err != nil {
			missing = append(missing, "etcd on PATH (make kube-deps installs Debian's etcd-server)")
		}
		o.Etcd = p
	} else if _, err := os.Stat(o.Etcd); err != nil {
		missing = append(missing, fmt.Sprintf("etcd at %s: %v", o.Etcd, err))
	}
	return missing
}

// ControlPlane is a running control plane. Its fields are for reading.
type ControlPlane struct {
	// Client is a clientset with the admin's token (system:masters).
	Client *kubernetes.Clientset
	// Config is Client's configuration, for other clients.
	Config *rest.Config
	// Kubeconfig is the path of the admin's kubeconfig.
	Kubeconfig string
	// Dir holds everything the control plane writes; Stop removes it.
	Dir string
	// Server is the API server's URL.
	Server string
	// CAFile is the cluster CA's certificate (PEM): it signs the API
	// server's serving certificate and every client certificate the API
	// server accepts, its own for kubelets included. A kubelet API takes
	// it as its client CA.
	CAFile string

	binDir   string
	pki      *pki
	procs    []*process
	stopOnce sync.Once
	stopErr  error
}

// process is one program Start ran, in a process group of its own.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	// exited closes when the program has exited. It is not reaped until
	// Stop: while it is a zombie its pid, and so its process group's id,
	// cannot name another process, so Stop's signals reach only ours.
	exited chan struct{}
}

// Start starts etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler on loopback, and returns once the API server is ready
// and pods can be created. ctx bounds the wait; on any failure what was
// started is stopped and its directory removed, and the error carries the
// end of the log of whichever process gave up.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	if missing := opts.Missing(); len(missing) > 0 {
		return nil, fmt.Errorf("start control plane: missing %s", strings.Join(missing, "; "))
	}
	dir, err := os.MkdirTemp("", "troupe-kube-")
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	c := &ControlPlane{Dir: dir, binDir: opts.BinDir}
	defer func() {
		if err != nil {
			// err already names a process that died; its cleanup need not.
			err = errors.Join(fmt.Errorf("start control plane: %w", err), c.stop(false))
		}
	}()
	for _, d := range []string{"logs", "pki", "etcd", "apiserver", "controller-manager"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	pki, err := makePKI(filepath.Join(dir, "pki"), kubernetesServiceIP)
	if err != nil {
		return nil, err
	}
	c.pki, c.CAFile = pki, pki.caCert
	// The ports are free when chosen, not reserved: another program may
	// take one before ours listens. That shows as an early exit with
	// "address already in use" in the error.
	etcdPort, peerPort, apiPort, err := freePorts()
	if err != nil {
		return nil, err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd, err := c.start("etcd", opts.Etcd,
		"--name=troupe-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=troupe-test="+peerURL,
		"--initial-cluster-state=new",
		// The default, capnslog, is deprecated and says so at every start.
		"--logger=zap",
		"--log-outputs=stderr",
	)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, etcd, func(ctx context.Context) error { return etcdHealthy(ctx, etcdURL) }); err != nil {
		return nil, err
	}

	tokens := map[string]string{
		"admin":                          token(),
		"system:kube-controller-manager": token(),
		"system:kube-scheduler":          token(),
	}
	var csv strings.Builder
	for user, tok := range tokens {
		groups := ""
		if user == "admin" {
			groups = `,"system:masters"`
		}
		fmt.Fprintf(&csv, "%s,%s,%s%s\n", tok, user, user, groups)
	}
	tokenFile := filepath.Join(dir, "pki", "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(csv.String()), 0o600); err != nil {
		return nil, err
	}

	c.Server = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	api, err := c.start("kube-apiserver", filepath.Join(opts.BinDir, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--advertise-address=127.0.0.1",
		// The kubernetes service's endpoints may not be a loopback address
		// (validation refuses it): with the reconciler on, the API server
		// would retry writing them forever. Pods reaching the API server
		// through the service is the agent's networking, not yet here.
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(dir, "apiserver"),
		"--tls-cert-file="+pki.serverCert,
		"--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		// Logs, exec and attach go from the API server to the node's
		// kubelet API, which authenticates it by this certificate.
		"--kubelet-client-certificate="+pki.kubeletClientCert,
		"--kubelet-client-key="+pki.kubeletClientKey,
		"--token-auth-file="+tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range="+serviceCIDR,
		"--allow-privileged=true",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}

	c.Config = &rest.Config{
		Host:            c.Server,
		BearerToken:     tokens["admin"],
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM},
		// client-go's default of 5 requests a second throttles tests that
		// make a few dozen objects.
		QPS:   50,
		Burst: 100,
		// Protobuf: a benchmark's watch of a thousand pods costs the API
		// server less.
		ContentConfig: rest.ContentConfig{
			ContentType:        runtime.ContentTypeProtobuf,
			AcceptContentTypes: runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON,
		},
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	kubeconfig := func(name, user string) (string, error) {
		p := filepath.Join(dir, name+".kubeconfig")
		return p, writeKubeconfig(p, c.Server, pki.caPEM, user, tokens[user])
	}
	if c.Kubeconfig, err = kubeconfig("admin", "admin"); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, api, c.ready); err != nil {
		return nil, err
	}
	// What a node's agent may do, and what the API server may do on its
	// kubelet API, before any node's agent asks.
	if err := rbac.Ensure(ctx, c.Client); err != nil {
		return nil, err
	}

	kcmConfig, err := kubeconfig("controller-manager", "system:kube-controller-manager")
	if err != nil {
		return nil, err
	}
	kcm, err := c.start("kube-controller-manager", filepath.Join(opts.BinDir, "kube-controller-manager"),
		"--kubeconfig="+kcmConfig,
		// Serving nothing spares a port and its race; liveness shows in
		// what the controllers do.
		"--secure-port=0",
		"--cert-dir="+filepath.Join(dir, "controller-manager"),
		// One instance: leader election would only add a lease to wait on
		// after a restart.
		"--leader-elect=false",
		// The default, 20 requests a second, makes a ReplicaSet of 1000
		// take 50 s to create its pods: a dense node's pace is the control
		// plane's, not the node's.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		// Each controller under its own service account, as the bootstrap
		// RBAC roles expect: the manager's own user may do little itself.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki.saKey,
		"--root-ca-file="+pki.caCert,
		"--cluster-signing-cert-file="+pki.caCert,
		"--cluster-signing-key-file="+pki.caKey,
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	schedConfig, err := kubeconfig("scheduler", "system:kube-scheduler")
	if err != nil {
		return nil, err
	}
	if _, err := c.start("kube-scheduler", filepath.Join(opts.BinDir, "kube-scheduler"),
		"--kubeconfig="+schedConfig,
		"--secure-port=0",
		"--leader-elect=false",
		// Binds at up to 200 pods a second rather than 50 (deprecated
		// for a config file, which would be one more file to write).
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	// Pod creation is refused until the service-account controller has made
	// the namespace's default account.
	if err := waitFor(ctx, kcm, func(ctx context.Context) error {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errors.New("no service account default/default yet")
		}
		return err
	}); err != nil {
		return nil, err
	}
	return c, c.Exited()
}

// ready reports whether the API server's /readyz answers ok.
func (c *ControlPlane) ready(ctx context.Context) error {
	body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("readyz: %w: %s", err, body)
	}
	return nil
}

// Exited returns an error naming each process of the control plane that
// has exited, with the end of its log; nil while all run.
func (c *ControlPlane) Exited() error {
	var errs []error
	for _, p := range c.procs {
		select {
		case <-p.exited:
			errs = append(errs, fmt.Errorf("%s exited:\n%s", p.name, tail(p.log)))
		default:
		}
	}
	return errors.Join(errs...)
}

// Logs returns the end of each process's log, for a failed test.
func (c *ControlPlane) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, tail(p.log))
	}
	return b.String()
}

// ClientCert issues a client certificate signed by the cluster CA for the
// user cn in the groups orgs (PEM certificate and key), valid for a day.
func (c *ControlPlane) ClientCert(cn string, orgs ...string) (certPEM, keyPEM []byte, err error) {
	return c.pki.clientCert(cn, orgs...)
}

// NodeKubeconfig writes a kubeconfig for the agent of node nodeName and
// returns its path: a client certificate of the cluster CA for the user
// system:node:<nodeName> in the groups system:nodes (as a kubelet's) and
// rbac.KubeletGroup, whose role Start made. ctx bounds the check that the
// role is still there.
func (c *ControlPlane) NodeKubeconfig(ctx context.Context, nodeName string) (string, error) {
	if errs := validation.IsDNS1123Subdomain(nodeName); len(errs) > 0 {
		return "", fmt.Errorf("node kubeconfig: node name %q: %s", nodeName, strings.Join(errs, "; "))
	}
	// A test may have changed or removed the RBAC; the agent's needs are
	// this package's promise.
	if err := rbac.Ensure(ctx, c.Client); err != nil {
		return "", fmt.Errorf("node kubeconfig for %s: %w", nodeName, err)
	}
	certPEM, keyPEM, err := c.pki.clientCert("system:node:"+nodeName, "system:nodes", rbac.KubeletGroup)
	if err != nil {
		return "", fmt.Errorf("node kubeconfig for %s: %w", nodeName, err)
	}
	user := "system:node:" + nodeName
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["troupe-test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["troupe-test"] = &clientcmdapi.Context{Cluster: "troupe-test", AuthInfo: user}
	cfg.CurrentContext = "troupe-test"
	p := filepath.Join(c.Dir, "node-"+nodeName+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		return "", fmt.Errorf("node kubeconfig for %s: %w", nodeName, err)
	}
	return p, nil
}

// Kubectl runs the kubectl of the binary directory as the admin, and
// returns its combined output.
func (c *ControlPlane) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Stop stops the processes Start started, the last first (each gets
// stopGrace after SIGTERM, then SIGKILL; only its own process group is
// signalled), and removes Dir. It returns an error naming each process that
// had died before Stop, and any failure to clean up. Calls after the first
// return the first's result.
func (c *ControlPlane) Stop() error { return c.stop(true) }

func (c *ControlPlane) stop(reportExited bool) error {
	c.stopOnce.Do(func() {
		var errs []error
		if reportExited {
			errs = append(errs, c.Exited())
		}
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop()
		}
		errs = append(errs, linuxtest.RemoveAll(c.Dir))
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// start runs bin in a process group of its own with its output in
// logs/<name>.log, and registers it with the test guard.
func (c *ControlPlane) start(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, log: filepath.Join(c.Dir, "logs", name+".log"), exited: make(chan struct{})}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = c.Dir
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pid := p.cmd.Process.Pid
	linuxtest.TrackProcess(pid)
	c.procs = append(c.procs, p)
	go func() {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		close(p.exited)
	}()
	return p, nil
}

// stop ends p's process group and reaps p.
func (p *process) stop() {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.exited:
	default:
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
		}
	}
	// Whatever else is left in the group goes too; the unreaped leader
	// keeps the group's id ours until Wait.
	syscall.Kill(-pgid, syscall.SIGKILL)
	p.cmd.Wait()
}

// waitFor polls check until it succeeds, p exits, or ctx ends.
func waitFor(ctx context.Context, p *process, check func(context.Context) error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited while starting (last check: %v):\n%s", p.name, err, tail(p.log))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v):\n%s", p.name, ctx.Err(), err, tail(p.log))
		case <-tick.C:
		}
	}
}

func etcdHealthy(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"true"`)) {
		return fmt.Errorf("etcd /health: %s: %s", resp.Status, body)
	}
	return nil
}

func writeKubeconfig(path, server string, caPEM []byte, user, tok string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["troupe-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: tok}
	cfg.Contexts["troupe-test"] = &clientcmdapi.Context{Cluster: "troupe-test", AuthInfo: user}
	cfg.CurrentContext = "troupe-test"
	return clientcmd.WriteToFile(*cfg, path)
}

// freePorts returns three distinct loopback ports that were free a moment
// ago: all are held open together while chosen, so none repeats.
func freePorts() (a, b, c int, err error) {
	var ports [3]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, 0, err
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], ports[2], nil
}

// cleanEnv is the environment without what would configure etcd or kubectl
// behind our flags' back (ETCD_* variables, KUBECONFIG).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tail returns the last lines of a log file, enough to show why a program
// gave up.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4096
	if len(data) > max {
		data = data[len(data)-max:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}
