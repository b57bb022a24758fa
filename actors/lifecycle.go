package actors

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/actors/stdio"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/containerlog"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
)

// A container's life: started (fresh, restored from a checkpoint, claimed
// from a warm pool) or adopted from an earlier daemon, then watched until
// its processes exit.

func (a *containerActor) start(ctx actor.Context, msg *StartContainer) {
	if a.rec.startReply != nil || a.rec.queue.busy {
		a.refuse(ctx, "is starting")
		return
	}
	a.rec.startReply = ctx.Sender()
	self, root, rt, adm, d := ctx.Self(), ctx.ActorSystem().Root, a.deps.runtime, a.deps.admission, a.deps
	id, bundle := a.rec.id, a.rec.bundlePath
	from, name, logLimits, restorePull := a.rec.restoreFrom, a.rec.restoreName, a.rec.log, a.rec.restorePull
	fromImage, initStdio, join, books := a.rec.fromImage, a.rec.initStdio, a.rec.join, ctx.Parent()
	// A pool's containers were made with namespaces of their own.
	cold := name != "" || logLimits != (containerlog.Limits{}) || initStdio != nil || len(join) > 0
	a.enqueue(ctx, func() {
		ctx, cancel := d.opContext()
		defer cancel()
		// lease, once taken, is released before the report: whoever gets
		// the reply may delete the checkpoint at once.
		var lease *checkpointLease
		var image string // the digest, once its root is mounted
		var sess *stdio.Session
		finish := func(m *containerStartFinished) {
			if lease != nil {
				lease.release()
			}
			if sess != nil && m.err != nil {
				sess.Close()
				sess = nil
			}
			m.stdio = sess
			if image != "" && m.err != nil {
				if err := d.images.Store.Unmount(id); err != nil {
					m.err = fmt.Errorf("%w; and its root stays: %v", m.err, err)
				}
			}
			m.image = image
			root.Send(self, m)
		}
		// A start from an image, and a restore of a container that ran from
		// one, make their root in the slot (mountRoot), from image
		// rootImage: see there.
		var mountRoot func() (string, error)
		var rootImage string
		if fromImage != nil {
			resolved, err := d.resolveImage(ctx, fromImage)
			if err != nil {
				finish(&containerStartFinished{err: fmt.Errorf("start container %q: %w", id, err)})
				return
			}
			// As from a bundle's pool, below; the overrides must match.
			if !cold {
				if pool := d.pools.forKey(imagePoolKey(resolved.Digest, fromImage.Overrides)); pool != nil {
					t0 := time.Now()
					if c, ok, err := claimWarm(ctx, pool, id); ok {
						if err == nil {
							image = resolved.Digest
						}
						finish(&containerStartFinished{container: c, started: time.Since(t0), warm: err == nil, err: err})
						return
					}
				}
			}
			img := &imageToMount{image: resolved, overrides: fromImage.Overrides, sharedUTS: join[runtime.UTSNamespace] != ""}
			if img.config, err = d.images.Store.Config(resolved); err != nil {
				finish(&containerStartFinished{err: fmt.Errorf("start container %q: %w", id, err)})
				return
			}
			// A terminal's TERM is in the spec.
			img.overrides.Terminal = initStdio != nil && initStdio.Terminal
			mountRoot = func() (string, error) { return d.mountImage(ctx, id, img) }
			rootImage = resolved.Digest
		}
		// A start of a bundle with a warm pool, with the default log
		// limits and stdio (those the pool's containers were made with),
		// claims one of its prepared containers when one is ready.
		if !cold && fromImage == nil {
			if pool := d.pools.forBundle(bundle); pool != nil {
				t0 := time.Now()
				if c, ok, err := claimWarm(ctx, pool, id); ok {
					finish(&containerStartFinished{container: c, started: time.Since(t0), warm: err == nil, err: err})
					return
				}
			}
		}
		opts := runtime.StartOptions{BundlePath: bundle, Log: logLimits}
		if len(join) > 0 {
			var err error
			if opts.Join, err = resolveJoin(ctx, root, books, join); err != nil {
				finish(&containerStartFinished{err: fmt.Errorf("start container %q: %w", id, err)})
				return
			}
		}
		if initStdio != nil {
			o := *initStdio
			o.LogOutput = !o.Terminal
			s, child, err := stdio.New(o)
			if err != nil {
				finish(&containerStartFinished{err: fmt.Errorf("start container %q: %w", id, err)})
				return
			}
			defer child.Close()
			sess = s
			opts.Stdin, opts.Terminal, opts.ConsoleSocket = child.Stdin, o.Terminal, child.ConsoleSocket
			opts.ConsoleWidth, opts.ConsoleHeight = child.Width, child.Height
		}
		if name != "" {
			// The checkpoint cannot be deleted while CRIU reads it.
			var err error
			if lease, err = d.checkpoints.lease(ctx, from, name, useRead); err != nil {
				finish(&containerStartFinished{err: fmt.Errorf("restore container %q: %w", id, err)})
				return
			}
			cp, images, err := lease.get()
			if err != nil {
				finish(&containerStartFinished{err: fmt.Errorf("restore container %q: %w", id, err)})
				return
			}
			switch {
			case cp.Image != "" && opts.BundlePath == "":
				img, err := d.checkpointImage(ctx, cp, restorePull)
				if err != nil {
					finish(&containerStartFinished{err: fmt.Errorf("restore container %q: %w", id, err)})
					return
				}
				mountRoot = func() (string, error) { return d.mountCheckpointRoot(ctx, id, cp, images, img) }
				rootImage = cp.Image
			case opts.BundlePath == "":
				opts.BundlePath = cp.BundlePath
			}
			opts.Restore = &runtime.RestoreOptions{ImagesDir: images, TCP: cp.TCP, UnixSockets: cp.UnixSockets, Shell: cp.Shell}
		}
		// The bundle is read and checked before the start takes a slot: a
		// bad one is refused without waiting for one, and file I/O that is
		// slow (or a config.json that is not a file) holds up no other start.
		// An image's bundle is made with its root, in the slot (below),
		// and checked by the start that follows at once: a Check of its
		// own would be one more round trip to the engine for nothing.
		if mountRoot == nil {
			if err := rt.Check(ctx, id, opts); err != nil {
				finish(&containerStartFinished{err: err})
				return
			}
		}
		queued, err := adm.acquire(ctx)
		if err != nil {
			finish(&containerStartFinished{queued: queued, err: fmt.Errorf("start container %q: waiting for admission: %w", id, err)})
			return
		}
		t0 := time.Now()
		if mountRoot != nil {
			// The root is mounted only once the start holds its slot:
			// every init's mount namespace starts as a copy of the
			// daemon's, so the roots of a burst's waiting starts, mounted
			// ahead, would be copied (and torn down) by every init before
			// theirs, O(N) each. The spec is made from the mounted root (it
			// reads the image's /etc/passwd), so it is made here too.
			if opts.BundlePath, err = mountRoot(); err != nil {
				adm.release()
				if name != "" {
					err = fmt.Errorf("restore container %q: %w", id, err)
				}
				finish(&containerStartFinished{queued: queued, err: err})
				return
			}
			image = rootImage
		}
		c, err := rt.Start(ctx, id, opts)
		adm.release()
		if err == nil && sess != nil {
			if err = sess.Start(ctx); err != nil {
				// A terminal nobody holds is of no use: the start failed.
				if derr := c.Delete(context.WithoutCancel(ctx), true); derr != nil {
					err = fmt.Errorf("%w; and the container stays: %v", err, derr)
				}
				err = fmt.Errorf("start container %q: %w", id, err)
				c = nil
			}
		}
		if err == nil && image != "" {
			// Its init runs in the root now: the daemon's namespace
			// lets go of it (rootfs.Dir.Detach says why).
			if derr := d.images.Store.Detach(id); derr != nil {
				d.logger.Warn("the root of a container from an image stays mounted in the daemon's namespace", "id", id, "err", derr)
			}
		}
		finish(&containerStartFinished{container: c, queued: queued, started: time.Since(t0), restored: opts.Restore != nil, err: err})
	})
}

func (a *containerActor) startFinished(ctx actor.Context, msg *containerStartFinished) {
	a.rec.queue.busy = false
	if msg.err != nil {
		a.log.Info("start failed", "err", msg.err)
		a.remove(ctx, a.rec.startReply, &StartContainerResult{Queued: msg.queued, Err: msg.err})
		return
	}
	if msg.container.BundlePath() != "" {
		a.rec.bundlePath = msg.container.BundlePath()
	}
	a.rec.warm = msg.warm
	if msg.image != "" {
		a.rec.image = msg.image
	}
	if msg.stdio != nil {
		if a.rec.stdio == nil {
			a.rec.stdio = make(map[int]*stdio.Session)
		}
		a.rec.stdio[msg.container.Init().Pid()] = msg.stdio
	}
	a.adopt(ctx, msg.container, msg.adopted)
	kind := api.EventStart
	if msg.restored {
		kind = api.EventRestore
	}
	a.publish(api.Event{Type: kind, Pid: msg.container.Init().Pid()})
	a.changed(ctx, a.rec.startReply, &StartContainerResult{Container: a.info(), Queued: msg.queued, Started: msg.started})
	a.rec.startReply = nil
	a.next()
}

// adopt takes charge of a started container, or of one an earlier daemon
// started (loaded), and watches its init.
func (a *containerActor) adopt(ctx actor.Context, c runtime.Container, loaded bool) {
	a.rec.ctr = c
	a.rec.procs = []runtime.Process{c.Init()}
	// A container just started runs: asking libcontainer (which refreshes
	// its whole state) is paid only for one found paused or stopped.
	status := runtime.Running
	if loaded {
		if s, err := c.Status(); err == nil && s != runtime.Created {
			status = s
		}
	}
	a.rec.status = status
	a.become()
	watchInit(ctx.ActorSystem().Root, ctx.Self(), c)
}

func (a *containerActor) processExited(ctx actor.Context, pid int, st runtime.ExitStatus) {
	i := a.rec.procIndex(pid)
	if i < 0 {
		// Already accounted for, or one of the processes the init's exit
		// took with it: its exit is recorded now.
		if a.rec.ctr == nil || pid != a.rec.ctr.Init().Pid() {
			a.execExited(pid, st)
		}
		return
	}
	if a.rec.ctr != nil && pid == a.rec.ctr.Init().Pid() && a.rec.exit == nil {
		code := st.Code
		a.rec.exit = &st
		a.rec.status = runtime.Stopped
		// The kernel kills the rest of the pid namespace with its init; their
		// own exits still come, each as a process-exit event.
		for _, p := range a.rec.procs[1:] {
			a.publish(api.Event{Type: api.EventProcessExit, Pid: p.Pid(), ExitStatus: exitCode(p)})
		}
		a.rec.procs = nil
		a.streamExited(pid, st)
		a.publish(api.Event{Type: api.EventExit, Pid: pid, ExitStatus: &code})
		a.become()
		a.changed(ctx, nil, nil)
		return
	}
	code := st.Code
	a.rec.procs = append(a.rec.procs[:i:i], a.rec.procs[i+1:]...)
	a.execExited(pid, st)
	a.publish(api.Event{Type: api.EventProcessExit, Pid: pid, ExitStatus: &code})
	a.changed(ctx, nil, nil)
}

// exitCode is p's exit code if it has exited (its waiter message may still
// be on the way), else nil.
func exitCode(p runtime.Process) *int {
	select {
	case <-p.Done():
		st, _ := p.Wait(context.Background())
		return &st.Code
	default:
		return nil
	}
}

// imageToMount is the image of a start from an image, resolved (and pulled
// if asked) before the start waits for its slot, with its configuration and
// the start's overrides.
type imageToMount struct {
	image     image.Image
	config    imagespec.Image
	overrides imagespec.Overrides
	// sharedUTS says the container joins another's UTS namespace: the
	// host name is that one's, and the spec names none.
	sharedUTS bool
}

// mountImage mounts the root of container id from m's image and writes
// the bundle of the spec made from the image's configuration and the
// start's overrides. It returns the bundle's path; on an error, nothing
// of the root stays.
func (d *deps) mountImage(ctx context.Context, id string, m *imageToMount) (bundlePath string, err error) {
	st := d.images.Store
	root, err := st.Mount(ctx, id, m.image)
	if err != nil {
		return "", fmt.Errorf("start container %q: %w", id, err)
	}
	dir := st.BundleDir(id)
	generate := d.images.Policy.Generate
	if m.sharedUTS {
		// As for a container prepared before its id is known: no host
		// name, and no HOSTNAME in the environment that would name
		// another host than the one it shares.
		generate = func(_, root string, img imagespec.Image, o imagespec.Overrides) (*specs.Spec, error) {
			return d.images.Policy.GeneratePrepared(root, img, o)
		}
	}
	spec, err := generate(id, root, m.config, m.overrides)
	if err == nil {
		err = bundle.Write(dir, spec)
	}
	if err != nil {
		if uerr := st.Unmount(id); uerr != nil {
			err = fmt.Errorf("%w; and its root stays: %v", err, uerr)
		}
		return "", fmt.Errorf("start container %q from image %s: %w", id, m.image.Digest, err)
	}
	return dir, nil
}

// joinTimeout bounds the asks of the joined containers' actors for their
// inits, which answer from their records at once.
const joinTimeout = 10 * time.Second

// resolveJoin takes the init pid of each container whose namespaces a start
// joins from that container's actor (through the books, which know them
// all): its record, not a pid read from /proc, which another process could
// have by now. The runtime checks again that the pid is still that
// container's init when its own init enters the namespaces. A namespace
// file needs no pid: the runtime checks the file itself.
func resolveJoin(ctx context.Context, root *actor.RootContext, books *actor.PID, join map[runtime.Namespace]string) ([]runtime.Join, error) {
	timeout := joinTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	pids := make(map[string]int, len(join))
	var joins []runtime.Join
	for _, ns := range slices.Sorted(maps.Keys(join)) {
		j := joinOf(ns, join[ns])
		if j.Path != "" {
			joins = append(joins, j)
			continue
		}
		other := j.Container
		pid, ok := pids[other]
		if !ok {
			reply, err := root.RequestFuture(books, &GetContainer{ID: other}, timeout).Result()
			if err != nil {
				return nil, fmt.Errorf("join %s of container %q: ask its actor: %v: %w", ns, other, err, errclass.Unavailable)
			}
			res, _ := reply.(*GetContainerResult)
			if res == nil {
				return nil, fmt.Errorf("join %s of container %q: its actor answered %T: %w", ns, other, reply, errclass.Unavailable)
			}
			if res.Err != nil {
				return nil, fmt.Errorf("join %s: %w", ns, res.Err)
			}
			c := res.Container
			if (c.State.Status != api.Running && c.State.Status != api.Paused) || len(c.Processes) == 0 {
				return nil, fmt.Errorf("join %s of container %q: it is %s, not running: %w", ns, other, c.State.Status, errclass.FailedPrecondition)
			}
			pid = c.Processes[0].Pid // the init comes first
			pids[other] = pid
		}
		j.Pid = pid
		joins = append(joins, j)
	}
	return joins, nil
}

// joinOf is the join of namespace ns that value names, as a start's join
// does (StartContainer.Join): a path names a namespace file, anything else
// a container, whose init's pid the caller adds.
func joinOf(ns runtime.Namespace, value string) runtime.Join {
	if runtime.IsNamespacePath(value) {
		return runtime.Join{Namespace: ns, Path: value}
	}
	return runtime.Join{Namespace: ns, Container: value}
}

// joinValue is the inverse of joinOf: what names j in a start's join.
func joinValue(j runtime.Join) string {
	if j.Path != "" {
		return j.Path
	}
	return j.Container
}
