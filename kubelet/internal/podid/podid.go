// Package podid names the troupe containers of a pod. The names are the
// agent's only record of which container belongs to which pod: troupe keeps
// no labels, so after a restart the agent finds its pods' containers by
// parsing the ids the daemon lists.
//
// A pod's container NAME is "k8s_<pod uid>_<NAME>" (init containers
// included: names are unique within a pod). "k8s_<pod uid>" was the pod's
// sandbox container when the agent ran one: Parse still takes it, so that
// one left by an earlier agent is collected. A pod uid is 36 characters
// and a container name a DNS label of at most 63, so an id fits troupe's
// 128.
package podid

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Prefix starts every id the agent makes; the daemon's other containers
// are not the agent's.
const Prefix = "k8s_"

// Container is the id of the pod's container named name.
func Container(pod types.UID, name string) string { return Prefix + string(pod) + "_" + name }

// Parse splits an id made by Container, or an earlier agent's sandbox
// (name empty); ok is false for an id the agent did not make.
func Parse(id string) (pod types.UID, name string, ok bool) {
	rest, found := strings.CutPrefix(id, Prefix)
	if !found || rest == "" {
		return "", "", false
	}
	uid, name, _ := strings.Cut(rest, "_")
	if uid == "" {
		return "", "", false
	}
	return types.UID(uid), name, true
}
