package linux

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/troupe-run/troupe/runtime/procstat"
)

// libcontainer reads its init's start time from /proc once, as the init
// comes up (Container.currentState), and drops an error doing so: the start
// time is then 0, in memory and in state.json. From then on it takes the
// live init for a process that has gone (it compares start times so that a
// recycled pid is not taken for the init) and calls the container stopped:
// Status says so, and Pause, Set and Checkpoint refuse it. CI saw a
// container stopped right after its start.

// settleStartTime finds that case once the init of l has started (pid) and
// mends it: the start time goes into state.json and the container is
// loaded afresh from it. It costs every start one libcontainer Status (a
// freezer read and a stat), which 300-start bursts did not tell from noise.
func (l *launch) settleStartTime(pid int) error {
	if s, err := l.lc.Status(); err != nil || s != libcontainer.Stopped {
		return nil // the usual case; an error shows again to whoever asks
	}
	st, err := procstat.Read(pid)
	if err != nil || st.Gone() {
		return nil // it has exited already: stopped is right
	}
	mended, err := mendStartTime(filepath.Join(l.r.stateRoot, l.id), st.StartTicks)
	if err != nil {
		return fmt.Errorf("container %q: libcontainer lost its init's start time: %w", l.id, err)
	}
	if !mended {
		return nil
	}
	lc, err := libcontainer.Load(l.r.stateRoot, l.id)
	if err != nil {
		return classify(err, "container %q: load it with its init's start time", l.id)
	}
	l.lc = lc
	return nil
}

// libcontainer's state.json, and State.InitProcessStartTime's name in it.
const (
	stateFile    = "state.json"
	startTimeKey = "init_process_start"
)

// readState reads the state.json of dir field by field, each left as it
// is written, so that one can be changed and the rest written back as is.
func readState(dir string) (map[string]json.RawMessage, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var state map[string]json.RawMessage
	if err := json.Unmarshal(data, &state); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return state, nil
}

// mendStartTime sets the init's start time in the state.json of dir to
// ticks when it is 0 there, and reports whether it did. Any other value is
// libcontainer's own reading and stays.
func mendStartTime(dir string, ticks uint64) (bool, error) {
	state, err := readState(dir)
	if err != nil {
		return false, err
	}
	if v, ok := state[startTimeKey]; ok && string(v) != "0" {
		return false, nil
	}
	state[startTimeKey] = json.RawMessage(strconv.FormatUint(ticks, 10))
	path := filepath.Join(dir, stateFile)
	data, err := json.Marshal(state)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	// As libcontainer writes it: a new file renamed over the old one.
	tmp, err := os.CreateTemp(dir, "state-")
	if err != nil {
		return false, err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
