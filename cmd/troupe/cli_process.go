package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/troupe-run/troupe/api"
)

func newExecCommand(o *globalOptions) *cobra.Command {
	var (
		env                        []string
		cwd                        string
		user                       string
		detach, interactive, isTTY bool
	)
	cmd := &cobra.Command{
		Use:   "exec ID [flags] -- ARGS...",
		Short: "run a process in a running container",
		Long: `Run the command ARGS in the running container ID, show what it writes (its
stdout here on stdout, its stderr on stderr) and exit with its exit code.
Put ARGS after -- when they hold flags of their own. Without --env the process
gets the init's environment.

-i sends this command's stdin to the process (its end closes the process's
stdin); -t gives the process a terminal, puts this one in raw mode meanwhile
(Ctrl-C then goes to the process) and follows its size: -it for a shell.
-d starts the process in the background and prints its host pid instead.`,
		Example: `  troupe exec redis -- redis-cli ping
  troupe exec -it redis -- sh
  troupe exec redis --user 1000:1000 --env TERM=xterm --cwd /data -- ls -l
  troupe exec -d redis -- sleep 300`,
		GroupID: groupProcesses,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ExecRequest{Args: args[1:], Env: env, Cwd: cwd}
			if err := checkEnv(env); err != nil {
				return err
			}
			if user != "" {
				u, err := parseUser(user)
				if err != nil {
					return err
				}
				req.User = &u
			}
			if detach && (interactive || isTTY) {
				return fmt.Errorf("exec: -d runs the process in the background: it takes neither -i nor -t")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if detach {
				proc, err := c.Exec(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				return o.output(cmd, proc, func(w io.Writer) error { return printLine(w, proc.Pid) })
			}
			req.Attach, req.Stdin, req.Terminal = true, interactive, isTTY
			if f, ok := cmd.InOrStdin().(*os.File); ok && isTTY {
				if w, h := terminalSize(f); w > 0 && h > 0 {
					req.ConsoleSize = &api.ConsoleSize{Width: w, Height: h}
				}
			}
			proc, err := c.Exec(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			exit, err := attach(cmd.Context(), cmd, c, args[0], proc.Pid, attachOptions{stdin: interactive, tty: isTTY})
			if err != nil {
				return err
			}
			return exitWith(cmd, exit)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable, `KEY=value` (repeatable)")
	f.StringVar(&cwd, "cwd", "", "working `directory` inside the container (default /)")
	f.StringVarP(&user, "user", "u", "", "run as `UID[:GID]` (numbers; default 0:0)")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background and print the process's host pid")
	f.BoolVarP(&interactive, "interactive", "i", false, "send this command's stdin to the process")
	f.BoolVarP(&isTTY, "tty", "t", false, "give the process a terminal (with -i: an interactive shell)")
	return cmd
}

func newKillCommand(o *globalOptions) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill ID [PID]",
		Short: "signal a container's init, or one of its processes",
		Long: `Send a signal to the init of the container ID, or, with PID (a host pid, as
troupe top shows), to that process of the container.`,
		Example: `  troupe kill redis              # SIGTERM to the init
  troupe kill -s KILL redis
  troupe kill -s 1 redis 12345   # SIGHUP to pid 12345`,
		GroupID: groupProcesses,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := parseSignal(signal)
			if err != nil {
				return err
			}
			pid := 0
			if len(args) == 2 {
				if pid, err = strconv.Atoi(args[1]); err != nil || pid <= 0 {
					return fmt.Errorf("pid %q: want a positive number", args[1])
				}
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if pid != 0 {
				return c.Signal(cmd.Context(), args[0], pid, sig)
			}
			return c.Kill(cmd.Context(), args[0], sig)
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "TERM", "the `signal`, a number or a name (TERM, SIGKILL, hup)")
	return cmd
}

func newTopCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "top ID",
		Short:   "list the live processes of a container",
		Long:    "List the live processes of the container ID, the init first: PID (host pid), USER (uid:gid) and ARGS.",
		GroupID: groupProcesses,
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
			procs := info.Processes
			if procs == nil {
				procs = []api.Process{}
			}
			return o.output(cmd, procs, func(w io.Writer) error { return writeProcesses(w, procs) })
		},
	}
}
