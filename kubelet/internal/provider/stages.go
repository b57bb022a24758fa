package provider

import (
	"time"
)

// stages times a pod's way from CreatePod to Running, for one debug line
// when it gets there: where a slow start spent its time.
type stages struct {
	created time.Time
	// volumes, sandbox, network and start are the time spent in Prepare,
	// in making the sandbox, in attaching it to the pod network and in
	// troupe's starts; what is left of the whole waited (for the
	// worker's turn, or a backoff).
	volumes, sandbox, network, start time.Duration
	told                             bool
}

// timed adds the time f takes to d.
func timed(d *time.Duration, f func() error) error {
	t := time.Now()
	err := f()
	*d += time.Since(t)
	return err
}

// logStages logs the stages, once: the pod's status just said Running.
func (w *worker) logStages() {
	s := &w.stages
	if s.told {
		return
	}
	s.told = true
	total := time.Since(s.created)
	w.p.log.Debug("pod running", "pod", w.namespace+"/"+w.name, "total", total,
		"volumes", s.volumes, "sandbox", s.sandbox, "network", s.network, "start", s.start,
		"waited", total-s.volumes-s.sandbox-s.network-s.start)
}
