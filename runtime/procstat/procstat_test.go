package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		want  Stat
		isErr bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 1 0 0 0 5 3 7 2 20 0 1 0 2144816 2322432 332 18446744073709551615 0\n",
			Stat{State: 'S', StartTicks: 2144816, Comm: "sleep", CPUTicks: 8, ReapedTicks: 9, Flags: 4194560}, false},
		{"command with spaces and parens", "7 (a) b (c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n",
			Stat{State: 'Z', StartTicks: 99, Comm: "a) b (c"}, false},
		{"exiting", "9 (sh) D 1 9 9 0 -1 4228428 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n",
			Stat{State: 'D', StartTicks: 99, Comm: "sh", Flags: 4228428}, false},
		{"flags not a number", "7 (a) S 1 7 7 0 -1 x 0 0 0 0 0 0 0 0 20 0 1 0 99 0\n", Stat{}, true},
		{"CPU time not a number", "7 (a) S 1 7 7 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 99 0\n", Stat{}, true},
		{"no command", "7 a S 1\n", Stat{}, true},
		{"cut short", "7 (a) S 1 7 7\n", Stat{}, true},
		{"start time not a number", "7 (a) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 0\n", Stat{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.line)
			if (err != nil) != tc.isErr || got != tc.want {
				t.Errorf("parse = %+v, %v; want %+v, error %v", got, err, tc.want, tc.isErr)
			}
		})
	}
}

// TestRead: this process is alive, a reaped child is not found, and a child
// that has exited but is not reaped is a zombie that started no earlier
// than this process.
func TestRead(t *testing.T) {
	self, err := Read(os.Getpid())
	if err != nil || self.Gone() || self.StartTicks == 0 {
		t.Fatalf("Read(self) = %+v, %v", self, err)
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skipf("no true to run: %v", err)
	}
	pid := cmd.Process.Pid
	var zombie Stat
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if zombie, err = Read(pid); err != nil || zombie.Gone() {
			break
		}
	}
	if err != nil || zombie.State != 'Z' || zombie.StartTicks < self.StartTicks {
		t.Errorf("Read(exited child) = %+v, %v; want a zombie started after this process (%d)", zombie, err, self.StartTicks)
	}
	if self.Exiting() {
		t.Errorf("Read(self) = %+v: exiting", self)
	}
	if task, err := ReadTask(pid, pid); err != nil || task != zombie || !task.Exiting() {
		t.Errorf("ReadTask(exited child's only thread) = %+v, %v; want %+v, exiting", task, err, zombie)
	}
	_ = cmd.Wait()
	if st, err := Read(pid); err == nil {
		t.Errorf("Read(reaped child) = %+v, want an error", st)
	}
}
