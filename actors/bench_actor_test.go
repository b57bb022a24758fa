package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime/fake"
)

// newFakeBenchEnv is newFakeEnv for a benchmark (which takes a *testing.T).
func newFakeBenchEnv(b *testing.B) *fakeEnv {
	b.Helper()
	e := &fakeEnv{rt: fake.New(fake.Options{}), system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quietLogger() }))}
	var err error
	if e.sup, err = Spawn(e.system.Root, Config{Runtime: e.rt, Logger: quietLogger()}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = e.sup.Stop()
		e.system.Shutdown()
	})
	return e
}

// BenchmarkActorRoundTrip is one request to a container's actor and its
// reply, on the fake runtime so that only the actors are measured: every
// per-container API call (GET /containers/{id}, exec, signal, ...) pays it.
// "future" is protoactor's request/response alone; "Supervisor.Get" adds
// what the API's calls add around it (id check, context watch).
//
//	go test -tags seccomp -run '^$' -bench ActorRoundTrip ./actors/
func BenchmarkActorRoundTrip(b *testing.B) {
	e := newFakeBenchEnv(b)
	ctx := context.Background()
	if _, err := e.sup.Start(ctx, "c", "/b"); err != nil {
		b.Fatal(err)
	}
	b.Run("future", func(b *testing.B) {
		pid := e.sup.ContainerPID("c")
		b.ReportAllocs()
		for b.Loop() {
			res, err := e.system.Root.RequestFuture(pid, &GetContainer{ID: "c"}, 10*time.Second).Result()
			if err != nil {
				b.Fatal(err)
			}
			if r := res.(*GetContainerResult); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	})
	b.Run("Supervisor.Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.sup.Get(ctx, "c"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Supervisor.Get/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.sup.Get(ctx, "c"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// snapshotSize is the number of containers in BenchmarkStateSnapshot10k's
// books: ten times the benchmark's burst.
const snapshotSize = 10_000

// benchContainer is a running container as the books hold it.
func benchContainer(i int) *api.Container {
	return &api.Container{
		ID:         fmt.Sprintf("bench-%05d", i),
		BundlePath: "/var/lib/troupe/bundles/busybox",
		State:      api.ContainerState{Status: api.Running},
		Processes: []api.Process{{
			Pid:  100000 + i,
			Args: []string{"sleep", "3600"},
			Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:  "/",
		}},
		Created: time.Date(2026, 11, 29, 12, 0, 0, i, time.UTC),
	}
}

// BenchmarkStateSnapshot10k is the books with 10,000 containers: looking
// one up (GET /containers/{id} answered from the snapshot, admission
// checks), encoding all of it as GET /state does, and the cost of one
// change (with: the supervisor makes a new snapshot on every event, so a
// burst of starts pays it once per start).
//
//	go test -tags seccomp -run '^$' -bench StateSnapshot10k ./actors/
func BenchmarkStateSnapshot10k(b *testing.B) {
	s := &State{}
	// Built through with, in an order that is not sorted, as events come.
	for i := range snapshotSize {
		s = s.with(benchContainer((i * 7919) % snapshotSize))
	}
	if len(s.Containers) != snapshotSize {
		b.Fatalf("%d containers in the snapshot, want %d", len(s.Containers), snapshotSize)
	}
	b.Run("Get", func(b *testing.B) {
		ids := make([]string, 1024)
		for i := range ids {
			ids[i] = fmt.Sprintf("bench-%05d", (i*7919)%snapshotSize)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := s.Get(ids[i%len(ids)]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("JSON", func(b *testing.B) {
		// GET /state's body: the containers (and the machine, negligible).
		doc := struct {
			Containers []*api.Container `json:"containers"`
		}{s.Containers}
		data, err := json.Marshal(doc)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := json.NewEncoder(io.Discard).Encode(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("with/replace", func(b *testing.B) {
		c := benchContainer(snapshotSize / 2)
		c.State.Status = api.Paused
		b.ReportAllocs()
		for b.Loop() {
			if next := s.with(c); len(next.Containers) != snapshotSize {
				b.Fatal("replace changed the size")
			}
		}
	})
	b.Run("with/add", func(b *testing.B) {
		c := benchContainer(snapshotSize)
		c.ID = "bench-05000x" // in the middle: half the pointers move
		b.ReportAllocs()
		for b.Loop() {
			if next := s.with(c); len(next.Containers) != snapshotSize+1 {
				b.Fatal("add did not add")
			}
		}
	})
	b.Run("without", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if next := s.without("bench-05000"); len(next.Containers) != snapshotSize-1 {
				b.Fatal("without did not remove")
			}
		}
	})
}
