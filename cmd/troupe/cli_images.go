package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

func newPullCommand(o *globalOptions) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "pull an image from a registry into the daemon's store",
		Long: `Pull the image REF (registry/repository:tag, or registry/repository@sha256:...)
into the daemon's store, unpacking its layers, and print its digest last. The
daemon does the pull: its --registry-config gives the credentials, and
registries other than loopback ones need HTTPS unless it was started with
--insecure-registry. A name without a registry is Docker Hub's, as with docker
(busybox is index.docker.io/library/busybox:latest).

Each layer has a line: redrawn as it moves on a terminal, printed once when
it is complete otherwise.`,
		Example: `  troupe pull 127.0.0.1:5000/busybox:1
  troupe pull -q busybox          # only the digest`,
		GroupID: groupImages,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			out := cmd.OutOrStdout()
			var progress func(api.PullProgress)
			if !quiet && !o.json {
				progress = newPullDisplay(out).update
			}
			img, err := c.PullImage(ctx, args[0], progress)
			if err != nil {
				return err
			}
			return o.output(cmd, img, func(w io.Writer) error { return printLine(w, img.Digest) })
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the digest")
	return cmd
}

// pullDisplay shows a pull's progress, a line per layer: redrawn in place
// on a terminal, and on anything else (a file, a pipe, a CI log) a line
// when each layer is complete, so that the output stays readable.
type pullDisplay struct {
	w        io.Writer
	terminal bool
	order    []string // layers in the order they first reported
	lines    map[string]string
	done     map[string]bool
	drawn    int // lines drawn on the terminal so far
}

func newPullDisplay(w io.Writer) *pullDisplay {
	return &pullDisplay{w: w, terminal: isTerminal(w), lines: map[string]string{}, done: map[string]bool{}}
}

func (d *pullDisplay) update(p api.PullProgress) {
	if p.Layer == "" {
		return
	}
	if _, ok := d.lines[p.Layer]; !ok {
		d.order = append(d.order, p.Layer)
	}
	complete := p.Total > 0 && p.Done >= p.Total
	d.lines[p.Layer] = layerLine(p, complete)
	if !d.terminal {
		if complete && !d.done[p.Layer] {
			d.done[p.Layer] = true
			_, _ = fmt.Fprintln(d.w, d.lines[p.Layer])
		}
		return
	}
	// Back to the first line drawn, then every line again: a layer seen
	// for the first time adds one.
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", d.drawn)
	}
	for _, l := range d.order {
		fmt.Fprintf(&b, "\r\x1b[2K%s\n", d.lines[l])
	}
	d.drawn = len(d.order)
	_, _ = io.WriteString(d.w, b.String())
}

// layerLine is a layer's line: "sha256:0123456789ab  1.5 MiB / 3.2 MiB".
func layerLine(p api.PullProgress, complete bool) string {
	if complete {
		return fmt.Sprintf("%s  pulled %s", shortDigest(p.Layer), formatBytes(uint64(max(p.Total, 0))))
	}
	total := "?"
	if p.Total > 0 {
		total = formatBytes(uint64(p.Total))
	}
	return fmt.Sprintf("%s  %s / %s", shortDigest(p.Layer), formatBytes(uint64(max(p.Done, 0))), total)
}

// isTerminal says whether w is a terminal, where lines can be redrawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// shortDigest is the algorithm and the first 12 hex digits of a digest, as
// docker shows image ids.
func shortDigest(d string) string {
	alg, hexPart, ok := strings.Cut(d, ":")
	if !ok || len(hexPart) <= 12 {
		return d
	}
	return alg + ":" + hexPart[:12]
}

func newImagesCommand(o *globalOptions) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "list the images in the daemon's store",
		Long: `List the images in the daemon's store, a line per name: NAME, DIGEST (short),
SIZE (of its compressed layers), CONTAINERS (how many run from it) and PULLED.
An image whose every name was removed while containers used it shows
<none>. -q prints each image's full digest once.`,
		GroupID: groupImages,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			imgs, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			if imgs == nil {
				imgs = []api.Image{} // [] in JSON, not null
			}
			return o.output(cmd, imgs, func(w io.Writer) error {
				if quiet {
					for _, img := range imgs {
						if err := printLine(w, img.Digest); err != nil {
							return err
						}
					}
					return nil
				}
				return writeImages(w, imgs, time.Now())
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the digests")
	return cmd
}

// writeImages writes the table of `troupe images`.
func writeImages(w io.Writer, imgs []api.Image, now time.Time) error {
	rows := [][]string{{"NAME", "DIGEST", "SIZE", "CONTAINERS", "PULLED"}}
	for _, img := range imgs {
		names := img.Names
		if len(names) == 0 {
			names = []string{"<none>"}
		}
		for _, n := range names {
			rows = append(rows, []string{n, shortDigest(img.Digest), formatBytes(uint64(max(img.Size, 0))),
				strconv.Itoa(img.Containers), ago(img.Pulled, now)})
		}
	}
	return table(w, rows)
}

// ago says how long before now t was, in its largest unit: "42 seconds
// ago", "3 hours ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}} {
		if n := int(d / u.d); n >= 1 || u.name == "second" {
			n = max(n, 0)
			if n == 1 {
				return "1 " + u.name + " ago"
			}
			return fmt.Sprintf("%d %ss ago", n, u.name)
		}
	}
	return ""
}

func newRmiCommand(o *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi REF...",
		Short: "remove images from the daemon's store",
		Long: `Remove each REF from the daemon's store, printing it: a name removes that name,
and the image goes with its last name; a digest (sha256:...) removes the image
with all its names. The blobs and layers no other image uses go too. An
image that containers run from is refused unless --force (their roots stay
until they are deleted). The other REFs are still removed when one fails.`,
		Example: `  troupe rmi 127.0.0.1:5000/busybox:1
  troupe rmi --force sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741`,
		GroupID: groupImages,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var failed []error
			var removed []api.Image
			for _, ref := range args {
				img, err := c.RemoveImage(cmd.Context(), ref, force)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				removed = append(removed, img)
				if !o.json {
					if err := printLine(cmd.OutOrStdout(), ref); err != nil {
						return err
					}
				}
			}
			if o.json && removed != nil {
				if err := writeJSON(cmd.OutOrStdout(), removed); err != nil {
					return err
				}
			}
			return reportAll(cmd, failed)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove an image that containers use")
	return cmd
}

// runOptions are the flags of `troupe run`.
type runOptions struct {
	name, pull, entrypoint, user, workdir, hostname string
	network, ipc, uts                               string
	env, tmpfs, volumes, capAdd, capDrop            []string
	readOnly, detach, remove, interactive, tty      bool
	memory                                          string
	pids                                            int64
	cpuShares                                       uint64
	cpus                                            float64
}

func newRunCommand(o *globalOptions) *cobra.Command {
	r := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [ARG...]  |  run [flags] BUNDLE",
		Short: "start a container from an image",
		Long: `Start a container from the image IMAGE (a name or a digest), or from the OCI
bundle BUNDLE (a path: /..., ./... or ../..., whose config.json says it all, as
with runc run). ARGs replace the image's command (its CMD); --entrypoint
replaces its entrypoint, and then drops its CMD, as docker run does. Flags go
before IMAGE: what follows it is the container's command line.

--pull says whether the image is pulled first: missing (the default, as with
docker run) pulls it when the store does not have it, always pulls it every
time (a tag may have moved), never starts only from the store. Progress goes
to stderr, so that stdout is the id alone.

The command shows what the container writes (its stdout on stdout, its
stderr on stderr) and ends with its exit code, as docker run does; Ctrl-C
detaches and leaves it running. The container stays once its command ended
(troupe rm removes it) unless --rm. -d runs it in the background and prints
its id (troupe attach follows it later). Its output is also in its log
(troupe logs); troupe exec runs more processes in it.

-i sends this command's stdin to the container's init; -t gives the init a
terminal (this one in raw mode meanwhile): -it for a shell. A container's
kept stdin and terminal do not survive a daemon restart (the init's stdin
ends, its terminal hangs up); its log does.

--network, --ipc and --uts container:ID put the container in those
namespaces of the running container ID instead of its own, as in a pod
(its host name is then ID's: not with --hostname). An absolute path instead,
such as /run/netns/NAME (ip netns add), joins the namespace that file holds.`,
		Example: `  troupe run --rm 127.0.0.1:5000/busybox:1 sh -c 'echo hi; exit 3'
  troupe run -d --name web 127.0.0.1:5000/busybox:1 httpd -f -p 8080
  troupe run --name job -e MODE=batch --user 1000:1000 --memory 64m --pids-limit 100 \
      --read-only --tmpfs /tmp:size=16m --cap-drop ALL busybox sh -c 'echo hi'
  troupe run --pull never --entrypoint /bin/sleep busybox 300
  troupe run -d --network container:pod1 --ipc container:pod1 --uts container:pod1 busybox httpd -f -p 8080
  troupe run -d --network /run/netns/pod2 busybox httpd -f -p 8080`,
		GroupID: groupImages,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImage(cmd, o, r, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	// Everything after IMAGE is the container's command line, its flags
	// included (sh -c ...).
	f.SetInterspersed(false)
	f.StringVar(&r.name, "name", "", "the container's `ID` (default: 12 random hex digits)")
	r.flags(f)
	f.BoolVarP(&r.detach, "detach", "d", false, "run in the background and print the container's id")
	f.BoolVar(&r.remove, "rm", false, "remove the container once its command ended (not with -d)")
	f.BoolVarP(&r.interactive, "interactive", "i", false, "send this command's stdin to the container's init")
	f.BoolVarP(&r.tty, "tty", "t", false, "give the container's init a terminal (with -i: an interactive shell)")
	r.joinFlags(f)
	return cmd
}

// joinFlags adds --network, --ipc and --uts (troupe run's and troupe
// start's).
func (r *runOptions) joinFlags(f *pflag.FlagSet) {
	f.StringVar(&r.network, "network", "", "join the network namespace of another container, `container:ID` (a pod), or of a namespace file, /PATH")
	f.StringVar(&r.ipc, "ipc", "", "join the IPC namespace of another container, `container:ID`, or of a namespace file, /PATH")
	f.StringVar(&r.uts, "uts", "", "join the UTS namespace (and host name) of another container, `container:ID`, or of a namespace file, /PATH")
}

// join is the start's join of the namespaces --network, --ipc and --uts
// name, nil for none.
func (r *runOptions) join() (*api.Join, error) {
	var j api.Join
	for _, f := range []struct {
		flag, value string
		field       *string
	}{{"network", r.network, &j.Network}, {"ipc", r.ipc, &j.IPC}, {"uts", r.uts, &j.UTS}} {
		if f.value == "" {
			continue
		}
		if strings.HasPrefix(f.value, "/") {
			// A namespace file, as the API takes it: the daemon checks it.
			*f.field = f.value
			continue
		}
		id, ok := strings.CutPrefix(f.value, "container:")
		if !ok || id == "" {
			// A container has namespaces of its own by default; the host's
			// are not offered by name.
			return nil, fmt.Errorf("--%s %q: want container:ID, to join that container's namespace, or the absolute path of a namespace file", f.flag, f.value)
		}
		*f.field = id
	}
	if j == (api.Join{}) {
		return nil, nil
	}
	return &j, nil
}

// flags adds the flags of what a start from an image changes of the image
// (troupe run's, and troupe pool set's with --image).
func (r *runOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&r.pull, "pull", string(api.PullMissing), "when to pull the image first, a `POLICY`: missing, always or never")
	f.StringArrayVarP(&r.env, "env", "e", nil, "set an environment variable, `KEY=value`, or KEY for this shell's value (repeatable)")
	f.StringVarP(&r.user, "user", "u", "", "run as `USER[:GROUP]`, names or numbers, looked up in the image (default: the image's)")
	f.StringVarP(&r.workdir, "workdir", "w", "", "working `directory` in the container (default: the image's)")
	f.StringVar(&r.entrypoint, "entrypoint", "", "replace the image's entrypoint with this `program` (\"\" clears it)")
	f.StringVar(&r.hostname, "hostname", "", "the container's host `name` (default: its id)")
	f.BoolVar(&r.readOnly, "read-only", false, "mount the container's root read-only")
	f.StringVarP(&r.memory, "memory", "m", "", "memory limit in `bytes`, with an optional unit (k, m, g: powers of 1024)")
	f.Int64Var(&r.pids, "pids-limit", 0, "most processes the container may have (-1: no limit)")
	f.Uint64Var(&r.cpuShares, "cpu-shares", 0, "relative CPU weight (2 to 262144)")
	f.Float64Var(&r.cpus, "cpus", 0, "CPUs the container may use, such as 1.5")
	f.StringArrayVar(&r.tmpfs, "tmpfs", nil, "mount a tmpfs at `DEST[:OPTIONS]`, OPTIONS such as size=64m,mode=1777,exec,ro (repeatable)")
	f.StringArrayVarP(&r.volumes, "volume", "v", nil, "bind a host path, `SRC:DEST[:ro]` (repeatable; needs a daemon run with --allow-binds)")
	f.StringArrayVar(&r.capAdd, "cap-add", nil, "add a `capability` to the default set (NET_ADMIN, or ALL; repeatable)")
	f.StringArrayVar(&r.capDrop, "cap-drop", nil, "drop a `capability` from the default set (NET_RAW, or ALL; repeatable)")
}

// runImage is `troupe run`.
func runImage(cmd *cobra.Command, o *globalOptions, r *runOptions, ref string, args []string) error {
	bundle, err := bundleArg(ref)
	if err != nil {
		return err
	}
	var req api.StartRequest
	if bundle != "" {
		// A bundle says its command and everything else in its
		// config.json, as with runc run.
		if len(args) > 0 {
			return fmt.Errorf("run: %s is a bundle: its config.json has the command line, ARGs are for an image", ref)
		}
		if f := changedImageFlag(cmd); f != "" {
			return fmt.Errorf("run: --%s is for an image; %s is a bundle, whose config.json says it", f, ref)
		}
		req.BundlePath = bundle
	} else if req, err = r.request(cmd, ref, args); err != nil {
		return err
	}
	if req.Join, err = r.join(); err != nil {
		return err
	}
	id := r.name
	if id == "" {
		if id, err = randomID(); err != nil {
			return err
		}
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx, stop := interruptible(cmd)
	defer stop()
	// The daemon would pull by itself, silently; pulling here first shows
	// the progress, as docker run does.
	pull := bundle == "" && req.Pull == api.PullAlways
	if bundle == "" && req.Pull == api.PullMissing {
		_, err := c.Image(ctx, ref)
		if err != nil && !errors.Is(err, errclass.NotFound) {
			return err
		}
		pull = err != nil
	}
	if pull {
		var progress func(api.PullProgress)
		if !o.json {
			progress = newPullDisplay(cmd.ErrOrStderr()).update
		}
		if _, err := c.PullImage(ctx, ref, progress); err != nil {
			return err
		}
		req.Pull = api.PullMissing
	}
	if r.detach && r.remove {
		return fmt.Errorf("run: --rm removes the container once its command ended, which -d does not wait for")
	}
	req.Stdin, req.Terminal = r.interactive, r.tty
	if f, ok := cmd.InOrStdin().(*os.File); ok && r.tty {
		if w, h := terminalSize(f); w > 0 && h > 0 {
			req.ConsoleSize = &api.ConsoleSize{Width: w, Height: h}
		}
	}
	info, err := c.Start(ctx, id, req)
	if err != nil {
		return err
	}
	if r.detach || len(info.Processes) == 0 {
		return o.output(cmd, info, func(w io.Writer) error { return printLine(w, info.ID) })
	}
	// All it wrote, from its start: it may have written before the attach.
	init := info.Processes[0].Pid
	s, err := c.AttachInit(ctx, id, init, true)
	var exit api.ProcessExit
	if err == nil {
		exit, err = attachStream(ctx, cmd, c, id, init, s, attachOptions{stdin: r.interactive, tty: r.tty})
	} else if errors.Is(err, errclass.FailedPrecondition) {
		// It ended before the attach: what it wrote is in its log.
		exit, err = c.Wait(ctx, id, init)
		if err == nil {
			err = printLogs(ctx, cmd, c, id)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C: detached, it runs on
		}
		return err
	}
	if r.remove {
		if err := c.Delete(ctx, id, true); err != nil {
			return err
		}
	}
	return exitWith(cmd, exit)
}

// request is the start request the flags ask for.
func (r *runOptions) request(cmd *cobra.Command, ref string, args []string) (api.StartRequest, error) {
	s := api.ImageStart{Image: ref, Pull: api.PullPolicy(r.pull), Args: args, User: r.user, Cwd: r.workdir,
		Hostname: r.hostname, ReadOnlyRoot: r.readOnly, Pids: r.pids, CPUShares: r.cpuShares,
		CapAdd: r.capAdd, CapDrop: r.capDrop}
	switch s.Pull {
	case api.PullNever, api.PullMissing, api.PullAlways:
	default:
		return api.StartRequest{}, fmt.Errorf("--pull %q: want never, missing or always", r.pull)
	}
	if cmd.Flags().Changed("entrypoint") {
		ep := []string{}
		if r.entrypoint != "" {
			ep = []string{r.entrypoint}
		}
		s.Entrypoint = &ep
	}
	for _, e := range r.env {
		if k, _, ok := strings.Cut(e, "="); ok {
			if k == "" {
				return api.StartRequest{}, fmt.Errorf("--env %q: want KEY=value or KEY", e)
			}
			s.Env = append(s.Env, e)
		} else if v, ok := os.LookupEnv(e); ok && e != "" {
			// As docker: a bare KEY passes this shell's value, and none
			// when it has none.
			s.Env = append(s.Env, e+"="+v)
		}
	}
	if r.memory != "" {
		m, err := parseSize(r.memory)
		if err != nil {
			return api.StartRequest{}, fmt.Errorf("--memory: %w", err)
		}
		s.Memory = m
	}
	if r.cpus < 0 {
		return api.StartRequest{}, fmt.Errorf("--cpus %v: must not be negative", r.cpus)
	}
	if r.cpus > 0 {
		// docker's --cpus: a quota of that many periods of 100ms.
		s.CPUPeriod = 100000
		s.CPUQuota = int64(r.cpus * 100000)
	}
	for _, t := range r.tmpfs {
		m, err := parseTmpfs(t)
		if err != nil {
			return api.StartRequest{}, err
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, v := range r.volumes {
		m, err := parseVolume(v)
		if err != nil {
			return api.StartRequest{}, err
		}
		s.Mounts = append(s.Mounts, m)
	}
	return api.StartRequest{ImageStart: s}, nil
}

// parseTmpfs reads --tmpfs DEST[:OPTIONS], OPTIONS a comma-separated list of
// size=SIZE, mode=OCTAL, exec, noexec, ro and rw, as docker's --tmpfs.
func parseTmpfs(v string) (api.Mount, error) {
	dest, opts, _ := strings.Cut(v, ":")
	m := api.Mount{Type: "tmpfs", Destination: dest}
	if dest == "" {
		return m, fmt.Errorf("--tmpfs %q: want DEST[:OPTIONS]", v)
	}
	for _, o := range strings.Split(opts, ",") {
		key, val, _ := strings.Cut(o, "=")
		switch key {
		case "":
		case "size":
			n, err := parseSize(val)
			if err != nil || n < 0 {
				return m, fmt.Errorf("--tmpfs %q: size %q: want bytes with an optional unit (k, m, g)", v, val)
			}
			m.Size = n
		case "mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return m, fmt.Errorf("--tmpfs %q: mode %q: want octal permission bits such as 1777", v, val)
			}
			m.Mode = uint32(n)
		case "exec", "noexec":
			m.Exec = key == "exec"
		case "ro", "rw":
			m.ReadOnly = key == "ro"
		default:
			return m, fmt.Errorf("--tmpfs %q: unknown option %q (want size=, mode=, exec, noexec, ro or rw)", v, o)
		}
	}
	return m, nil
}

// parseVolume reads --volume SRC:DEST[:ro|rw], a bind mount of a host path.
func parseVolume(v string) (api.Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return api.Mount{}, fmt.Errorf("--volume %q: want SRC:DEST[:ro]", v)
	}
	m := api.Mount{Type: "bind", Source: parts[0], Destination: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return api.Mount{}, fmt.Errorf("--volume %q: option %q: want ro or rw", v, parts[2])
		}
	}
	return m, nil
}

// randomID is a container id for a run without --name: 12 hex digits, as
// short as docker's.
func randomID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a container id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// newSaveCommand is `troupe save REF > FILE`: an image as an OCI archive.
func newSaveCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "save REF > FILE",
		Short: "write an image as an OCI archive (tar) to stdout",
		Long: `Write the image REF (a name or a digest) from the daemon's store to stdout as
an OCI image layout in a tar archive: troupe load reads it on another daemon,
as skopeo (oci-archive:FILE) and podman load do.`,
		GroupID: groupImages,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			archive, err := c.ExportImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer archive.Close()
			_, err = io.Copy(cmd.OutOrStdout(), archive)
			return err
		},
	}
}

// newLoadCommand is `troupe load < FILE`: the images of an OCI archive.
func newLoadCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "load < FILE",
		Short: "add the images of an OCI archive (tar) on stdin to the store",
		Long: `Read an OCI image layout in a tar archive from stdin (troupe save's, skopeo's
oci-archive, podman save --format oci-archive) into the daemon's store, and
print each image's name (or digest, for one the archive does not name).`,
		GroupID: groupImages,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			imgs, err := c.ImportImages(cmd.Context(), cmd.InOrStdin())
			if err != nil {
				return err
			}
			return o.output(cmd, imgs, func(w io.Writer) error {
				for _, img := range imgs {
					line := img.Digest
					if len(img.Names) > 0 {
						line = strings.Join(img.Names, " ")
					}
					if err := printLine(w, line); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

// bundleArg is the absolute path of run's IMAGE argument when it is a
// bundle rather than an image: a path (it starts with /, ./ or ../) to a
// directory holding config.json. An image reference never starts so.
func bundleArg(arg string) (string, error) {
	if !strings.HasPrefix(arg, "/") && !strings.HasPrefix(arg, "./") && !strings.HasPrefix(arg, "../") && arg != "." && arg != ".." {
		return "", nil
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "config.json")); err != nil {
		return "", fmt.Errorf("run: %s is neither an image reference nor a bundle (a directory holding config.json): %w", arg, err)
	}
	return abs, nil
}

// changedImageFlag names a flag set on the command line that only a start
// from an image takes (runOptions.flags'), or "".
func changedImageFlag(cmd *cobra.Command) string {
	image := pflag.NewFlagSet("image", pflag.ContinueOnError)
	(&runOptions{}).flags(image)
	changed := ""
	image.VisitAll(func(f *pflag.Flag) {
		if changed == "" && cmd.Flags().Changed(f.Name) {
			changed = f.Name
		}
	})
	return changed
}
