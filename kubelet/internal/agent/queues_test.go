package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node"
	"k8s.io/client-go/util/workqueue"
)

// TestQueuesDoNotSpacePods: a burst of new pods goes through
// virtual-kubelet's queues at once; only a pod that failed waits, and
// longer at each failure.
func TestQueuesDoNotSpacePods(t *testing.T) {
	var c node.PodControllerConfig
	if err := onlyBackoff(&c); err != nil {
		t.Fatal(err)
	}
	queues := map[string]workqueue.TypedRateLimiter[any]{
		"sync from kubernetes": c.SyncPodsFromKubernetesRateLimiter,
		"delete":               c.DeletePodsFromKubernetesRateLimiter,
		"status from provider": c.SyncPodStatusFromProviderRateLimiter,
	}
	for name, q := range queues {
		for i := range 1000 {
			if d := q.When(fmt.Sprintf("default/pod-%d", i)); d > 5*time.Millisecond {
				t.Fatalf("%s queue: pod %d of a burst waits %v", name, i, d)
			}
		}
		first, again := q.When("default/pod-0"), q.When("default/pod-0")
		if again <= first {
			t.Errorf("%s queue: a pod that failed again waits %v, after %v", name, again, first)
		}
	}
}
