// Package controlplane starts a real Kubernetes control plane on loopback
// for the node agent's tests: Debian's etcd, and kube-apiserver,
// kube-controller-manager and kube-scheduler at the release that
// hack/kube-build pins (Version). No fake API server: the agent is tested
// against the same binaries a cluster runs.
//
// # In a test
//
//	cp := controlplane.StartTest(t)
//	nodes, err := cp.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
//	// or: kubectl --kubeconfig cp.Kubeconfig get nodes
//
// StartTest skips the test when the binaries are missing (make
// kube-binaries builds them, make kube-deps installs etcd) and fails it
// naming what is missing when TROUPE_REQUIRE_KUBE=1, as make kube-test
// sets. It stops the control plane in t.Cleanup. Run the package's tests
// under linuxtest.Guarded: each process is registered with its guard, which
// kills them if the test binary dies before its cleanups run (go test's
// -timeout, a SIGKILL).
//
// # What it starts
//
// Everything lives in one temporary directory that Stop removes: etcd's
// data, a CA and the API server's serving certificate made with
// crypto/x509, a service-account signing key, a static token file with one
// token each for an admin (system:masters), the controller manager and the
// scheduler, and a kubeconfig for each. The API server presents a client
// certificate of the CA (user kube-apiserver-kubelet-client) to kubelet
// APIs; Start binds that user to system:kubelet-api-admin, so that kubelet
// APIs let it use all their endpoints, and makes the agent's role (package
// rbac). NodeKubeconfig issues a node's agent a client certificate
// (system:node:<name>, groups system:nodes and troupe:kubelets) in a
// kubeconfig; ClientCert issues any other user's; CAFile is the CA for a
// kubelet API to verify them by. Every port is on 127.0.0.1 only:
// etcd's client and peer ports and the API server's secure port; the
// controller manager and the scheduler serve nothing. Each process runs in a
// process group of its own, with its output in logs/<name>.log; Stop signals
// exactly those groups, and a process that died early is reported with the
// end of its log.
//
// Start returns once the API server's /readyz answers ok and the controller
// manager has made the default namespace's service account (pods cannot be
// created before it exists), so its caller may create pods at once.
//
// # Where the binaries are
//
// In $TROUPE_KUBE_BIN when set, else in <cache>/<Version>, where <cache> is
// $TROUPE_KUBE_CACHE, or troupe-kube in the user's cache directory
// ($XDG_CACHE_HOME, else ~/.cache): where hack/kube-binaries.sh builds them.
// etcd is found on PATH, or at $TROUPE_ETCD.
package controlplane
