package daemontest

import (
	"context"
	"os"
	"testing"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

func TestStart(t *testing.T) {
	d := Start(t, Options{Name: "daemontest"})
	st, err := d.Client.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Machine.CPUs < 1 || st.Machine.Memory == 0 {
		t.Errorf("machine figures %+v", st.Machine)
	}
}
