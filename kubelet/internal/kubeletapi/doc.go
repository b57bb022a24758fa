// Package kubeletapi is the part of the kubelet API a troupe node serves:
// kubectl logs (-f), exec (-i, -t) and attach, over troupe's Go client, for
// a container named by its troupe id, and the TLS and authentication that
// make the API safe to expose.
//
// # Streams
//
// Streams's Logs, Exec and Attach have the shapes of virtual-kubelet's
// node/api handlers with the pod and container already resolved to a
// troupe id: the provider maps namespace/pod/container to
// podid.Container(uid, name) and delegates. Unknown containers are
// errdefs.NotFound. A non-zero exit of an exec'd command is returned as a
// k8s.io/utils/exec.CodeExitError, which node/api's exec handler reports
// to kubectl as the command's exit code.
//
// # Serving
//
// The kubelet API runs commands in every pod of the node: it is
// root-equivalent, and is served only over TLS (TLSConfig), to callers
// Kubernetes authorizes on the node, as a kubelet with webhook auth does
// (Auth, Handler): the API server by its client certificate
// (--kubelet-client-certificate, bound to system:kubelet-api-admin), or
// anyone holding a certificate of the cluster CA or a token the API
// server accepts, with nodes/proxy (or nodes/log, nodes/stats) on the
// node. The serving certificate is the operator's, or self-signed for the
// node's addresses: the API server does not verify kubelets' serving
// certificates unless told to.
//
//	tlsCfg, _ := kubeletapi.TLSConfig("", "", caPEM, nodeIP, nodeName)
//	auth, _ := kubeletapi.Auth(clientset, nodeName, caPEM)
//	srv := kubeletapi.NewServer(tlsCfg, kubeletapi.Handler(auth, api.PodHandler(cfg, false)))
//	go srv.ServeTLS(listener, "", "")
//
// or, with nodeutil.NewNode: nodeutil.AttachProviderRoutes(mux) and a
// NodeOpt setting TLSConfig to tlsCfg and Handler to Handler(auth, mux)
// (NewNode serves nothing without both).
//
// Not served: port-forward, and stats and metrics (/stats/summary,
// /metrics/resource), which need handlers of their own.
package kubeletapi
