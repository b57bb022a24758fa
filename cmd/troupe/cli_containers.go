package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
)

func newStartCommand(o *globalOptions) *cobra.Command {
	var checkpoint string
	var ns runOptions
	cmd := &cobra.Command{
		Use:   "start ID BUNDLE",
		Short: "create and start a container from an OCI bundle",
		Long: `Create and start the container ID from the OCI bundle directory BUNDLE (it holds
config.json), and print the id once its init runs. A relative BUNDLE is made
absolute against the current directory: the daemon needs the path on its own
machine.

With --checkpoint the container is restored from that checkpoint instead of
started fresh; CONTAINER/NAME restores another container's checkpoint under ID.

--network, --ipc and --uts container:ID put the container in those
namespaces of the running container ID instead of its own, as in a pod; an
absolute path instead, such as /run/netns/NAME, joins the namespace that
file holds.`,
		Example: `  troupe start redis /containers/redis
  troupe start redis2 /containers/redis --checkpoint redis/before-upgrade
  troupe start app /containers/app --network container:pod1 --ipc container:pod1 --uts container:pod1`,
		GroupID: groupContainers,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bundle, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			join, err := ns.join()
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			info, err := c.Start(cmd.Context(), args[0], api.StartRequest{BundlePath: bundle, Checkpoint: checkpoint, Join: join})
			if err != nil {
				return err
			}
			return o.output(cmd, info, func(w io.Writer) error { return printLine(w, info.ID) })
		},
	}
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "restore from the checkpoint `NAME` (or CONTAINER/NAME) instead of starting fresh")
	ns.joinFlags(cmd.Flags())
	return cmd
}

func newPsCommand(o *globalOptions) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ps",
		Aliases: []string{"list", "ls"},
		Short:   "list containers",
		Long: `List every container the daemon knows, stopped ones included, sorted by id:
ID, STATUS (with the exit status once stopped), PIDS (live processes),
INIT-PID (host pid) and BUNDLE.`,
		GroupID: groupContainers,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			cs, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			if cs == nil {
				cs = []*api.Container{} // [] in JSON, not null
			}
			return o.output(cmd, cs, func(w io.Writer) error {
				if quiet {
					for _, info := range cs {
						if err := printLine(w, info.ID); err != nil {
							return err
						}
					}
					return nil
				}
				return writeContainers(w, cs)
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return cmd
}

func newStateCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "state",
		Short: "show the daemon's whole state: its machine and every container",
		Long: `Show the answer of GET /state: the daemon's machine (usable CPUs, total memory)
and every container. With --json, the document as the API sends it.`,
		GroupID: groupContainers,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			s, err := c.State(cmd.Context())
			if err != nil {
				return err
			}
			if s.Containers == nil {
				s.Containers = []*api.Container{}
			}
			return o.output(cmd, s, func(w io.Writer) error {
				if err := printLine(w, machineText(s.Machine)); err != nil {
					return err
				}
				return writeContainers(w, s.Containers)
			})
		},
	}
}

func newInspectCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "inspect ID",
		Short:   "show a container as JSON",
		GroupID: groupContainers,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			info, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), info)
		},
	}
}

func newPauseCommand(o *globalOptions) *cobra.Command {
	return newContainerActionCommand(o, "pause ID", "freeze every process of a container",
		"Freeze every process of the container ID. Pausing a paused container succeeds.", (*client.Client).Pause)
}

func newResumeCommand(o *globalOptions) *cobra.Command {
	return newContainerActionCommand(o, "resume ID", "thaw a paused container", "", (*client.Client).Resume)
}

// containerAction is a client call that changes one container and answers
// with its new view.
type containerAction func(c *client.Client, ctx context.Context, id string) (api.Container, error)

// newContainerActionCommand is a command that applies action to the
// container ID and prints its id (or, with --json, the container).
func newContainerActionCommand(o *globalOptions, use, short, long string, action containerAction) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		GroupID: groupContainers,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			info, err := action(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.output(cmd, info, func(w io.Writer) error { return printLine(w, info.ID) })
		},
	}
}

func newUpdateCommand(o *globalOptions) *cobra.Command {
	var (
		memory    string
		cpuShares uint64
		pids      int64
	)
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "change the resource limits of a running container",
		Long: `Change the resource limits of the running container ID. Limits not given stay
as they are.`,
		Example: `  troupe update redis --memory 512m --pids 200
  troupe update redis --memory -1   # no memory limit`,
		GroupID: groupContainers,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r api.Resources
			if cmd.Flags().Changed("memory") {
				m, err := parseSize(memory)
				if err != nil {
					return err
				}
				r.Memory = &m
			}
			if cmd.Flags().Changed("cpu-shares") {
				r.CPUShares = &cpuShares
			}
			if cmd.Flags().Changed("pids") {
				r.Pids = &pids
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			info, err := c.Update(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			return o.output(cmd, info, func(w io.Writer) error { return printLine(w, info.ID) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&memory, "memory", "", "memory limit in `bytes`, with an optional unit (k, m, g: powers of 1024); -1 for none")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "relative CPU weight")
	f.Int64Var(&pids, "pids", 0, "maximum number of processes; -1 for none")
	cmd.MarkFlagsOneRequired("memory", "cpu-shares", "pids")
	return cmd
}

func newStatsCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "stats ID",
		Short:   "show a container's cgroup figures: CPU, memory, pids, block I/O",
		GroupID: groupContainers,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			st, err := c.Stats(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.output(cmd, st, func(w io.Writer) error { return writeStats(w, st) })
		},
	}
}

func newLogsCommand(o *globalOptions) *cobra.Command {
	var (
		lo   client.LogOptions
		tail string
	)
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "print the output of a container's init",
		Long: `Print what the init of the container ID wrote to stdout and stderr, line by line.
With --follow, go on as it writes until interrupted (Ctrl-C ends it cleanly).
--tail N prints only the last N lines (0: none of the past); --since TIME only
what was written from TIME on: an RFC 3339 time, Unix seconds, or a duration
before now such as 10m. --timestamps and --streams start each line with its
time and its stream.`,
		GroupID: groupContainers,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil || n < 0 {
					return fmt.Errorf("--tail %q: want a number of lines or all", tail)
				}
				lo.Tail = n
				if n == 0 {
					lo.Tail = -1
				}
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			c, err := o.client()
			if err != nil {
				return err
			}
			logs, err := c.Logs(ctx, args[0], lo)
			if err != nil {
				return err
			}
			defer logs.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), logs); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&lo.Follow, "follow", "f", false, "go on printing as the container writes")
	f.StringVarP(&tail, "tail", "n", "all", "print only the last N lines")
	f.StringVar(&lo.Since, "since", "", "print only what was written from this time on")
	f.BoolVarP(&lo.Timestamps, "timestamps", "t", false, "start each line with its time")
	f.BoolVar(&lo.Streams, "streams", false, "start each line with its stream (stdout or stderr)")
	return cmd
}

func newRmCommand(o *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm ID...",
		Aliases: []string{"remove", "delete"},
		Short:   "remove stopped containers",
		Long: `Remove the stopped containers and everything they left (cgroups, state, logs),
printing each id removed. A running container is refused unless --force, which
kills it first. The other containers are still removed when one fails.`,
		GroupID: groupContainers,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var failed []error
			for _, id := range args {
				if err := c.Delete(cmd.Context(), id, force); err != nil {
					failed = append(failed, err)
					continue
				}
				if !o.json {
					if err := printLine(cmd.OutOrStdout(), id); err != nil {
						return err
					}
				}
			}
			return reportAll(cmd, failed)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

// reportAll returns the one error of errs, or prints each of several on its
// own line as cobra would print one, and returns an error cobra keeps
// quiet, for the exit status.
func reportAll(cmd *cobra.Command, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	for _, err := range errs {
		cmd.PrintErrln(cmd.ErrPrefix(), err.Error())
	}
	cmd.SilenceErrors = true
	return fmt.Errorf("%d failures: %w", len(errs), errors.Join(errs...))
}
