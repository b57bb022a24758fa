package actors_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux"
)

// A program embeds troupe by spawning the supervisor in its own actor
// system. (Its main must call linux.Init first: the binary is also the
// containers' init.)
func Example() {
	dir, _ := os.MkdirTemp("", "troupe-example-")
	defer os.RemoveAll(dir)
	bundle, err := busybox.Bundle(filepath.Join(dir, "hello"), busybox.Options{
		Args: []string{"sh", "-c", "echo hello from a container; sleep 300"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := linux.New(linux.Options{StateDir: filepath.Join(dir, "state"), CgroupParent: fmt.Sprintf("/troupe-example-%d", os.Getpid())})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer system.Shutdown()

	sup, err := actors.Spawn(system.Root, actors.Config{Runtime: rt, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	exits := sup.Events().Subscribe(events.Filter{Container: "hello"})
	defer exits.Close()

	ctx := context.Background()
	started, err := sup.Start(ctx, "hello", bundle)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("status:", started.Container.State.Status)
	fmt.Println("listed:", len(sup.State().Containers))

	// Messages work as well as calls: ask the container's actor directly.
	res, _ := system.Root.RequestFuture(sup.ContainerPID("hello"), &actors.GetContainer{ID: "hello"}, 5*time.Second).Result()
	fmt.Println("init:", res.(*actors.GetContainerResult).Container.Processes[0].Args[0])

	_ = sup.Kill(ctx, "hello", syscall.SIGKILL)
	for e := range exits.C() {
		if e.Type == api.EventExit {
			fmt.Println("exit status:", *e.ExitStatus)
			break
		}
	}
	if err := sup.Delete(ctx, "hello", false); err != nil {
		fmt.Println(err)
	}
	fmt.Println("listed:", len(sup.State().Containers))
	// It prints (TestExample checks it, as root):
	// status: running
	// listed: 1
	// init: sh
	// exit status: 137
	// listed: 0
}

// TestExample runs Example and checks what it prints. Example has no
// Output comment, which would run it unconditionally: it starts a real
// container, which needs root, and an example cannot skip itself.
func TestExample(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starts a real container: needs root")
	}
	const want = "status: running\nlisted: 1\ninit: sh\nexit status: 137\nlisted: 0\n"
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	printed := make(chan string, 1)
	go func() {
		data, _ := io.ReadAll(r)
		printed <- string(data)
	}()
	stdout := os.Stdout
	os.Stdout = w
	Example()
	os.Stdout = stdout
	w.Close()
	if got := testutil.Receive(t, "Example's output", printed); got != want {
		t.Errorf("Example printed\n%s\nwant\n%s", got, want)
	}
}
