// Package kubelet is the home of troupe's Kubernetes node agent (issue #15),
// a module of its own so that client-go and the rest of Kubernetes never
// link into troupe, whose every linked package runs its init in each
// container start. Nothing is here yet but the real control plane its
// tests will run against, in internal/controlplane.
package kubelet
