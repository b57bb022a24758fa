package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/configs/validate"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/containerlog"
	"github.com/troupe-run/troupe/runtime/criu"
)

// DefaultCgroupParent is where container cgroups go in every hierarchy.
const DefaultCgroupParent = "/troupe"

// metaFile is troupe's own record of a container, kept in libcontainer's
// state directory of the container so that Destroy removes it with the rest.
const metaFile = "troupe.json"

// Options configure a Runtime.
type Options struct {
	// StateDir holds container state and init logs; it is created 0700.
	StateDir string
	// CgroupParent is the absolute cgroup path under which each container
	// gets <CgroupParent>/<id> (a prepared one <CgroupParent>/+warm-<hex>);
	// default DefaultCgroupParent.
	CgroupParent string
	// LogDir holds the containers' logs; default <StateDir>/logs. Logs are
	// bounded, but a tmpfs is memory: a disk is the better place.
	LogDir string
	// LogLimits bound each container's log unless its start says otherwise;
	// zero fields mean containerlog's defaults.
	LogLimits containerlog.Limits
	// OnLogDrop, when set, is told of container output that a log could not
	// take (a full disk), on the runtime's reactor goroutine: it must not
	// block.
	OnLogDrop func(path string, bytes int, err error)
	// CriuTimeout is the deadline of one checkpoint or restore of a
	// container using up to 1 GiB of memory, growing by as much again per
	// further GiB; default DefaultCriuTimeout.
	CriuTimeout time.Duration
}

// Runtime is the libcontainer implementation of runtime.Runtime.
type Runtime struct {
	waiters      *waiters
	stateRoot    string // libcontainer's root: one directory per container
	logRoot      string
	logLimits    containerlog.Limits
	logDrops     logDrops
	cgroupParent string
	criuTimeout  time.Duration
	specs        *specCache

	// rx watches every container's processes, log pipe and OOM events;
	// made on first use, so a Runtime that never runs anything costs
	// nothing (reactor.go).
	rxOnce sync.Once
	rx     *reactor
	rxErr  error
}

var _ runtime.Runtime = (*Runtime)(nil)

// meta is what troupe records about a container beside libcontainer's state.
type meta struct {
	BundlePath string              `json:"bundlePath"`
	Init       runtime.ProcessSpec `json:"init"`
	LogPath    string              `json:"logPath"`
	LogLimits  containerlog.Limits `json:"logLimits"`
	// Join are the namespaces of other containers it joined.
	Join []runtime.Join `json:"join,omitempty"`
}

// New returns a runtime keeping its state under o.StateDir.
func New(o Options) (*Runtime, error) {
	if !filepath.IsAbs(o.StateDir) {
		return nil, fmt.Errorf("state dir %q must be absolute: %w", o.StateDir, errclass.InvalidArgument)
	}
	if o.CgroupParent == "" {
		o.CgroupParent = DefaultCgroupParent
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.StateDir, "logs")
	}
	if !filepath.IsAbs(o.LogDir) {
		return nil, fmt.Errorf("log dir %q must be absolute: %w", o.LogDir, errclass.InvalidArgument)
	}
	if err := o.LogLimits.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %w", err, errclass.InvalidArgument)
	}
	if o.CriuTimeout <= 0 {
		o.CriuTimeout = DefaultCriuTimeout
	}
	if !path.IsAbs(o.CgroupParent) {
		return nil, fmt.Errorf("cgroup parent %q must be absolute: %w", o.CgroupParent, errclass.InvalidArgument)
	}
	r := &Runtime{
		waiters:      newWaiters(),
		stateRoot:    filepath.Join(o.StateDir, "containers"),
		logRoot:      o.LogDir,
		logLimits:    o.LogLimits.WithDefaults(containerlog.Limits{}),
		logDrops:     logDrops{notify: o.OnLogDrop},
		cgroupParent: path.Clean(o.CgroupParent),
		criuTimeout:  o.CriuTimeout,
		specs:        newSpecCache(),
	}
	prepareCgroupParent(r.cgroupParent)
	for _, d := range []string{o.StateDir, r.stateRoot, r.logRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	return r, nil
}

// Start implements runtime.Runtime: it runs the bundle's init, or restores
// the container from a checkpoint when opts.Restore says so.
func (r *Runtime) Start(ctx context.Context, id string, opts runtime.StartOptions) (runtime.Container, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	var c *container
	var err error
	if opts.Restore != nil {
		c, err = r.restore(ctx, id, opts)
	} else {
		c, err = r.run(ctx, id, opts)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Check implements runtime.Runtime: it loads and converts the bundle into
// the spec cache, where the start finds it.
func (r *Runtime) Check(ctx context.Context, id string, opts runtime.StartOptions) error {
	if err := runtime.ValidID("container id", id); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	b, _, err := r.specs.load(opts.BundlePath, func(b *bundle.Bundle) (*configs.Config, error) {
		return r.config(id, b)
	})
	if err != nil {
		return err
	}
	if err := checkTerminal(b, opts); err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	if err := checkJoinBundle(id, b, opts); err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	return nil
}

// checkTerminal refuses a bundle that wants a terminal (process.terminal)
// when the start gives none: its process would find no tty on its stdio.
func checkTerminal(b *bundle.Bundle, opts runtime.StartOptions) error {
	if b.Spec.Process.Terminal && !opts.Terminal && opts.Restore == nil {
		return fmt.Errorf("%s: process.terminal is set: start it with a terminal (\"terminal\": true), or set it to false: %w",
			filepath.Join(b.Path, bundle.ConfigFile), errclass.InvalidArgument)
	}
	return nil
}

// run creates the container id and runs its init.
func (r *Runtime) run(ctx context.Context, id string, opts runtime.StartOptions) (_ *container, retErr error) {
	l, err := r.create(ctx, id, opts)
	if err != nil {
		return nil, err
	}
	defer l.finish(&retErr)
	if err := l.lc.Run(l.proc); err != nil {
		return nil, classifyRun(classify(err, "start container %q", id), l.b.Spec.Process.Args[0], errclass.InvalidArgument)
	}
	for _, ji := range l.joined {
		if err := ji.alive(); err != nil {
			// It may have joined what a later process of that pid had:
			// the container goes, and finish removes it.
			_ = l.proc.Signal(unix.SIGKILL)
			_, _ = l.proc.Wait()
			return nil, fmt.Errorf("start container %q: %w", id, err)
		}
	}
	return l.container()
}

// prepare creates the container name (a prepared one, warm.go) with its
// init waiting for libcontainer's Exec.
func (r *Runtime) prepare(ctx context.Context, name, bundlePath string) (_ *container, retErr error) {
	l, err := r.create(ctx, name, runtime.StartOptions{BundlePath: bundlePath})
	if err != nil {
		return nil, err
	}
	defer l.finish(&retErr)
	if err := l.lc.Start(l.proc); err != nil {
		return nil, classifyRun(classify(err, "prepare container from %s", l.b.Path), l.b.Spec.Process.Args[0], errclass.InvalidArgument)
	}
	return l.container()
}

// restore creates the container id and brings its processes back from the
// checkpoint opts.Restore names.
func (r *Runtime) restore(ctx context.Context, id string, opts runtime.StartOptions) (_ *container, retErr error) {
	l, err := r.create(ctx, id, opts)
	if err != nil {
		return nil, err
	}
	defer l.finish(&retErr)
	ro := opts.Restore
	rctx, cancel := context.WithTimeout(ctx, criu.Timeout(r.criuTimeout, imagesSize(ro.ImagesDir)))
	defer cancel()
	err = criu.Bound(rctx, func() error {
		return l.lc.Restore(l.proc, &libcontainer.CriuOpts{
			ImagesDirectory:         ro.ImagesDir,
			TcpEstablished:          ro.TCP,
			ExternalUnixConnections: ro.UnixSockets,
			ShellJob:                ro.Shell,
			FileLocks:               true,
			ManageCgroupsMode:       "soft",
		})
	})
	switch {
	case err == nil:
	case errors.Is(err, criu.ErrStuck):
		// libcontainer still holds the container: Destroy would block.
		l.keep = true
		return nil, fmt.Errorf("restore container %q: %w", id, err)
	case rctx.Err() != nil:
		// Bound killed CRIU and the tasks it had restored; finish's
		// Destroy removes the cgroups and state.
		err = fmt.Errorf("restore container %q: %w", id, err)
		if uerr := criu.Unmount(ro.ImagesDir); uerr != nil {
			err = fmt.Errorf("%w; and what CRIU mounted stays: %v", err, uerr)
		}
		return nil, err
	default:
		return nil, criuError(classify(err, "restore container %q", id), filepath.Join(ro.ImagesDir, "restore.log"))
	}
	// libcontainer's in-process Restore leaves this *Container unable to
	// signal its init ("container not running"): load it afresh.
	if l.lc, err = libcontainer.Load(r.stateRoot, id); err != nil {
		return nil, classify(err, "restore container %q", id)
	}
	return l.container()
}

// launch is a container on its way up: created in libcontainer, recorded,
// its log pump running and its init process given its stdio, not yet
// started. run, prepare and restore each start it their own way.
type launch struct {
	r    *Runtime
	id   string
	b    *bundle.Bundle
	lc   *libcontainer.Container
	m    meta
	proc *libcontainer.Process
	// joined are the inits whose namespaces the init joins.
	joined []joinedInit
	stdin  *os.File
	pipes  *outputPipes
	rx     *reactor
	pump   *logPump
	// keep leaves libcontainer's container on failure: CRIU still holds it.
	keep bool
}

// create does what every start of id does before its init starts: check
// opts, take the bundle's configuration, create the libcontainer container,
// record it and hand the init its stdio with a fresh log behind it. On error
// nothing of it is left; on success the caller defers finish.
func (r *Runtime) create(ctx context.Context, id string, opts runtime.StartOptions) (_ *launch, retErr error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	b, base, err := r.specs.load(opts.BundlePath, func(b *bundle.Bundle) (*configs.Config, error) {
		return r.config(id, b)
	})
	if err != nil {
		return nil, err
	}
	if err := checkTerminal(b, opts); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	if err := checkJoinBundle(id, b, opts); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	config := r.configFor(id, base)
	// Checked as late as can be: the pids are checked again once the init
	// has entered the namespaces (run).
	joined, err := r.checkJoined(opts.Join)
	if err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	joinConfig(config, joined)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	lc, err := libcontainer.Create(r.stateRoot, id, config)
	if err != nil {
		if errors.Is(err, libcontainer.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, errclass.AlreadyExists)
		}
		return nil, classify(err, "create container %q", id)
	}
	limits := opts.Log.WithDefaults(r.logLimits)
	l := &launch{r: r, id: id, b: b, lc: lc, joined: joined, m: meta{BundlePath: b.Path, Init: initSpec(b.Spec.Process),
		LogPath: filepath.Join(r.logRoot, id+".log"), LogLimits: limits, Join: opts.Join}}
	defer func() {
		if retErr != nil {
			l.finish(&retErr)
		}
	}()
	if err := writeMeta(r.stateRoot, id, l.m); err != nil {
		return nil, err
	}
	if l.proc, err = initProcess(b.Spec.Process); err != nil {
		return nil, err
	}
	if err := l.handOverStdio(); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	if opts.Stdin != nil {
		if err := blocking(opts.Stdin); err != nil {
			return nil, fmt.Errorf("start container %q: %w", id, err)
		}
		l.proc.Stdin = opts.Stdin
	}
	if opts.Terminal {
		if opts.ConsoleSocket == nil {
			return nil, fmt.Errorf("start container %q: a terminal needs a console socket: %w", id, errclass.InvalidArgument)
		}
		l.proc.ConsoleSocket, l.proc.ConsoleWidth, l.proc.ConsoleHeight = opts.ConsoleSocket, opts.ConsoleWidth, opts.ConsoleHeight
	}
	return l, nil
}

// handOverStdio gives the init /dev/null for stdin and the write ends of
// its output pipes, whose read ends a fresh log pump copies into its log:
// a container that reuses an id does not inherit output.
func (l *launch) handOverStdio() error {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	l.stdin = stdin
	if l.pipes, err = newOutputPipes(); err != nil {
		return err
	}
	if l.rx, err = l.r.reactor(); err != nil {
		l.pipes.closeReads()
		return err
	}
	l.pump, err = startLogPump(l.rx, l.pipes.read[0], l.pipes.read[1], l.m.LogPath, l.m.LogLimits, true, &l.r.logDrops)
	if err != nil {
		return err
	}
	l.proc.Stdin, l.proc.Stdout, l.proc.Stderr = l.stdin, l.pipes.write[0], l.pipes.write[1]
	l.proc.ExtraFiles = l.pipes.init[:]
	return nil
}

// container watches the started init and returns the container.
func (l *launch) container() (*container, error) {
	pid, err := l.proc.Pid()
	if err != nil {
		return nil, classify(err, "start container %q", l.id)
	}
	if err := l.settleStartTime(pid); err != nil {
		// finish removes the container, which libcontainer thinks stopped.
		_ = l.proc.Signal(unix.SIGKILL)
		_, _ = l.proc.Wait()
		return nil, err
	}
	c := newContainer(l.lc, l.rx, l.r.waiters, l.m)
	c.init = waitChild(l.rx, l.r.waiters, pid, l.m.Init, l.proc.Signal, l.proc.Wait, c.afterInitExit(l.pump))
	c.criuTimeout = l.r.criuTimeout
	return c, nil
}

// finish closes the daemon's copies of what the init was handed (it holds
// its own) and, when *errp is set, removes the container again: a failed
// start leaves libcontainer's state dir (and maybe a cgroup) behind, which a
// later Load would call "does not exist".
func (l *launch) finish(errp *error) {
	if l.pipes != nil {
		l.pipes.closeInits()
	}
	if l.stdin != nil {
		l.stdin.Close()
	}
	if *errp != nil && !l.keep {
		_ = l.lc.Destroy()
		_ = containerlog.Remove(l.m.LogPath)
	}
}

// Load implements runtime.Runtime.
func (r *Runtime) Load(ctx context.Context, id string) (runtime.Container, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	lc, err := libcontainer.Load(r.stateRoot, id)
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, errclass.NotFound)
		}
		return nil, classify(err, "load container %q", id)
	}
	m, err := readMeta(r.stateRoot, id)
	if err != nil {
		return nil, err
	}
	st, err := lc.State()
	if err != nil {
		return nil, classify(err, "load container %q", id)
	}
	status, err := lc.Status()
	if err != nil {
		return nil, classify(err, "load container %q", id)
	}
	rx, err := r.reactor()
	if err != nil {
		return nil, fmt.Errorf("load container %q: %w", id, err)
	}
	c := newContainer(lc, rx, r.waiters, m)
	var init *process
	var pump *logPump
	if status != libcontainer.Stopped {
		// Take the output pipe back from the init first, so that its last
		// words reach the log before its exit is reported; a container that
		// cannot give it back just keeps running uncopied.
		if out, errp, perr := takeLogPipes(st.InitProcessPid); perr == nil {
			pump, _ = startLogPump(rx, out, errp, m.LogPath, m.LogLimits, false, &r.logDrops)
		}
		init, err = watchForeign(rx, st.InitProcessPid, m.Init, c.afterInitExit(pump))
	}
	if init == nil || err != nil {
		// Already gone: a process that is done, with an unknown status.
		init = newProcess(st.InitProcessPid, m.Init, func(os.Signal) error { return os.ErrProcessDone })
		init.finish(runtime.ExitStatus{Code: -1})
	}
	c.init = init
	c.criuTimeout = r.criuTimeout
	// A claimed prepared container: its id is a symlink to its state dir.
	if fi, err := os.Lstat(filepath.Join(r.stateRoot, id)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		c.alias = filepath.Join(r.stateRoot, id)
	}
	return c, nil
}

// LogDropped is how many bytes of container output the logs could not take
// (a full disk), since the runtime was made.
func (r *Runtime) LogDropped() uint64 { return r.logDrops.bytes.Load() }

// reactor returns the runtime's reactor, made on first use.
func (r *Runtime) reactor() (*reactor, error) {
	r.rxOnce.Do(func() { r.rx, r.rxErr = newReactor() })
	return r.rx, r.rxErr
}

// Close stops watching the runtime's containers, which keep running: their
// exits, output and OOM kills are no longer seen. The Runtime must not be
// used afterwards.
func (r *Runtime) Close() error {
	r.rxOnce.Do(func() {}) // none is made any more
	if r.rx != nil {
		r.rx.close()
	}
	return nil
}

// List implements runtime.Runtime.
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(r.stateRoot)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range entries {
		// Claimed prepared containers are symlinks (warm.go); prepared ones
		// not yet claimed have no valid id.
		if (e.IsDir() || e.Type()&os.ModeSymlink != 0) && runtime.ValidID("container id", e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// config converts the bundle's spec into libcontainer's configuration, with
// troupe's choices where the daemon, not the bundle, decides.
func (r *Runtime) config(id string, b *bundle.Bundle) (*configs.Config, error) {
	spec := *b.Spec
	linux := *spec.Linux
	// The daemon owns the cgroup layout: a bundle's own cgroupsPath could
	// nest the container somewhere delete would not clean.
	linux.CgroupsPath = path.Join(r.cgroupParent, id)
	spec.Linux = &linux
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id,
		Spec:       &spec,
	})
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %v: %w", b.Path, err, errclass.InvalidArgument)
	}
	// specconv takes the bundle from the working directory, which a daemon
	// does not change per container.
	for i, l := range config.Labels {
		if strings.HasPrefix(l, "bundle=") {
			config.Labels[i] = "bundle=" + b.Path
		}
	}
	// Containers must outlive the daemon: a restarted daemon re-adopts them.
	config.ParentDeathSignal = 0
	// No CRIU configuration file (runc's default is /etc/criu/runc.conf):
	// what a checkpoint needs comes from the daemon's request alone.
	config.Labels = append(config.Labels, "org.criu.config=")
	// libcontainer.Create validates the same way, but its errors cannot be
	// told from a failure of the runtime: here they are the bundle's, found
	// once per bundle and before a start takes a slot.
	if err := validate.Validate(config); err != nil {
		return nil, fmt.Errorf("bundle %s: %v: %w", b.Path, err, errclass.InvalidArgument)
	}
	return config, nil
}

// initSpec records what a spec's init runs.
func initSpec(p *specs.Process) runtime.ProcessSpec {
	s := runtime.ProcessSpec{Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		User: runtime.User{UID: int(p.User.UID), GID: int(p.User.GID)}}
	for _, g := range p.User.AdditionalGids {
		s.User.AdditionalGids = append(s.User.AdditionalGids, int(g))
	}
	return s
}

// initProcess is the libcontainer process of a spec's init.
func initProcess(p *specs.Process) (*libcontainer.Process, error) {
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		NoNewPrivileges: &p.NoNewPrivileges,
		Init:            true,
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		kind, ok := rlimits[rl.Type]
		if !ok {
			return nil, fmt.Errorf("bundle: process.rlimits: unknown type %q: %w", rl.Type, errclass.InvalidArgument)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: kind, Hard: rl.Hard, Soft: rl.Soft})
	}
	return lp, nil
}

// rlimits maps the spec's names to the kernel's resources.
var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

func writeMeta(stateRoot, id string, m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	p := filepath.Join(stateRoot, id, metaFile)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return fmt.Errorf("record container %q: %w", id, err)
	}
	return nil
}

func readMeta(stateRoot, id string) (meta, error) {
	var m meta
	data, err := os.ReadFile(filepath.Join(stateRoot, id, metaFile))
	if err != nil {
		return m, fmt.Errorf("load container %q: %w", id, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("load container %q: %s: %w", id, metaFile, err)
	}
	return m, nil
}
