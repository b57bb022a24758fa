package actors

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/fake"
)

// A checkpoint being streamed cannot be deleted under the stream: the
// delete is refused (failed precondition, 409) until the stream is done,
// and the stream blocks no actor meanwhile.
func TestCheckpointInUseIsNotDeleted(t *testing.T) {
	store, err := checkpoint.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newFakeEnv(t, fake.Options{}, Config{Checkpoints: store})
	ctx := testContext(t)
	if _, err := e.sup.Start(ctx, "c", "/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sup.Checkpoint(ctx, "c", "cp", runtime.CheckpointOptions{}); err != nil {
		t.Fatal(err)
	}

	// An export whose reader has read one byte holds its lease.
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := e.sup.ExportCheckpoint(ctx, "c", "cp", pw)
		pw.CloseWithError(err)
		exported <- err
	}()
	var archive bytes.Buffer
	if _, err := io.CopyN(&archive, pr, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sup.DeleteCheckpoint(ctx, "c", "cp"); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("delete during an export: %v, want failed precondition", err)
	}
	if _, err := e.sup.ImportCheckpoint(ctx, "c", "cp", bytes.NewReader(nil), 1<<20); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("import over a checkpoint being exported: %v, want already exists", err)
	}
	// Reads share: a restore from it goes on, and the actors answer.
	if _, err := e.sup.Restore(ctx, "clone", "", "c/cp"); err != nil {
		t.Errorf("restore during an export: %v", err)
	}
	if _, err := io.Copy(&archive, pr); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Receive(t, "the export to end", exported); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := e.sup.DeleteCheckpoint(ctx, "c", "cp"); err != nil {
		t.Errorf("delete after the export: %v", err)
	}

	// An import under way holds a write lease on its name.
	pr, pw = io.Pipe()
	imported := make(chan error, 1)
	go func() {
		_, err := e.sup.ImportCheckpoint(ctx, "c", "back", pr, 1<<20)
		pr.CloseWithError(err)
		imported <- err
	}()
	data := archive.Bytes()
	if _, err := pw.Write(data[:512]); err != nil {
		t.Fatal(err)
	}
	if err := e.sup.DeleteCheckpoint(ctx, "c", "back"); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("delete during an import: %v, want failed precondition", err)
	}
	if _, err := pw.Write(data[512:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := testutil.Receive(t, "the import to end", imported); err != nil {
		t.Fatalf("import: %v", err)
	}
	if err := e.sup.DeleteCheckpoint(ctx, "c", "back"); err != nil {
		t.Errorf("delete after the import: %v", err)
	}
}

// Every container command sent for a container that does not exist is
// answered, through the supervisor, with its own reply type.
func TestCommandsToUnknownContainer(t *testing.T) {
	e := newFakeEnv(t, fake.Options{}, Config{})
	cmds := []command{
		&GetContainer{ID: "none"},
		&ExecProcess{ID: "none", Process: runtime.ProcessSpec{Args: []string{"true"}}},
		&SignalProcess{ID: "none", Pid: 1},
		&SignalContainer{ID: "none"},
		&PauseContainer{ID: "none"},
		&ResumeContainer{ID: "none"},
		&UpdateResources{ID: "none"},
		&GetStats{ID: "none"},
		&DeleteContainer{ID: "none"},
		&CheckpointContainer{ID: "none", Name: "x"},
	}
	for _, cmd := range cmds {
		t.Run(reflect.TypeOf(cmd).Elem().Name(), func(t *testing.T) {
			res, err := e.system.Root.RequestFuture(e.sup.PID(), cmd, 10*time.Second).Result()
			if err != nil {
				t.Fatal(err)
			}
			if want := reflect.TypeOf(cmd.failed(nil)); reflect.TypeOf(res) != want {
				t.Fatalf("reply %T, want %v", res, want)
			}
			got, _ := reflect.ValueOf(res).Elem().FieldByName("Err").Interface().(error)
			if !errors.Is(got, errclass.NotFound) {
				t.Errorf("reply error %v, want not found", got)
			}
		})
	}
}
