// Package podvolumes materialises a pod's volumes on the host, each a
// directory that the pod's containers bind (podspec.Volumes), under a
// directory of the agent: <dir>/<pod uid>/volumes/<name>.
//
//   - emptyDir: a directory on disk (0777, as the kubelet's); medium Memory
//     is a tmpfs mounted there on the host, sizeLimit its size, so that the
//     pod's containers share it (a tmpfs of troupe's own would be one
//     container's). HugePages is refused.
//   - configMap, secret, downwardAPI and projected (configMap, secret,
//     downwardAPI and serviceAccountToken sources, the last through the
//     TokenRequest API): files written as the kubelet writes them, in a new
//     hidden directory that the "..data" symlink is then renamed to, each
//     top-level name a symlink through ..data, so that the containers (and
//     an agent restarted in the middle) see the old volume or the new one,
//     never half of one. Secrets and projected volumes (which hold the
//     service account's token) are written only to a tmpfs mounted on
//     their directory: they never reach a disk.
//   - fsGroup: emptyDir and the configMap, secret, downwardAPI and
//     projected files are given its group and group access, directories
//     setgid.
//   - hostPath and every other kind are refused.
//
// Left out: refreshing a token before it expires (and configMaps and
// secrets that change after the start): Prepare again rewrites them, but
// nothing calls it periodically yet. Items' resourceFieldRef of a limit
// the container does not set (the kubelet then reads the node's
// allocatable) is refused.
//
// Prepare is idempotent: an agent that restarts prepares the pods it finds
// again, over what is there. Remove unmounts what Prepare mounted and
// removes the pod's directory.
package podvolumes
