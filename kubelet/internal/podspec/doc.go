// Package podspec turns a Kubernetes pod into the troupe starts that run
// it: the sandbox, which holds the pod's network, IPC and UTS namespaces,
// and each container, started from its image joined to those namespaces.
//
// What a pod asks that troupe cannot honour is an error naming the field
// (a *FieldError), which the provider reports as the container's Waiting
// reason, rather than a container that silently runs otherwise. Refused:
// hostNetwork, hostPID, hostIPC, shareProcessNamespace, hostUsers=false,
// os.name other than linux, pod-level resources, sysctls,
// supplementalGroups, an fsGroup the container's group is not
// (troupe starts a process with no additional groups), privileged,
// allowPrivilegeEscalation=true (troupe always sets no_new_privs),
// procMount Unmasked, seLinuxOptions, seccomp and AppArmor profiles other
// than the runtime's default, runAsGroup without runAsUser (the image's
// user is not known here), postStart hooks, volumeDevices, extended and
// hugepage resources, mount propagation, recursive read-only mounts and
// subPaths that leave their volume.
//
// Ignored, as harmless to how the container runs or as the provider's
// business: ports, probes, preStop hooks (the provider may run them),
// terminationMessagePath and terminationMessagePolicy (no termination
// message is read), resizePolicy, requests.memory and ephemeral-storage (troupe has no soft memory limit
// nor disk quota), dnsPolicy and dnsConfig (the container keeps the
// image's /etc/resolv.conf), runtimeClassName, stdinOnce, windowsOptions,
// fsGroupChangePolicy, seLinuxChangePolicy. Init containers' restartPolicy
// (sidecars) and ephemeral containers are the provider's.
//
// runAsNonRoot is checked by Container when runAsUser is given; without it
// the user is the image's, which only the daemon knows: CheckNonRoot checks
// the started container. Env values come resolved and
// $(VAR)-expanded by virtual-kubelet: expanding them again would undo
// their $$ escapes, so only command, args and subPathExpr are expanded
// here. Containers get HOSTNAME, as other runtimes give it, and the pod's
// /etc/hosts (EtcHosts) when the provider writes one.
package podspec
