package actors_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
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
	// Output:
	// status: running
	// listed: 1
	// init: sh
	// exit status: 137
	// listed: 0
}
