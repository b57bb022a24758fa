package main

import (
	"io"

	"github.com/spf13/cobra"
	"github.com/troupe-run/troupe/api"
)

func newCheckpointCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "create, list and remove checkpoints of containers",
		Long: `Checkpoints are CRIU dumps of a container: its memory, open files and process
tree. They outlive the container and the daemon; troupe start --checkpoint
restores one, under the same id or another.`,
		GroupID: groupCheckpoints,
	}
	cmd.AddCommand(
		newCheckpointCreateCommand(o),
		newCheckpointListCommand(o),
		newCheckpointRemoveCommand(o),
		newCheckpointExportCommand(o),
		newCheckpointImportCommand(o),
	)
	return cmd
}

func newCheckpointExportCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "export ID NAME > FILE",
		Short: "write a checkpoint as a tar archive to stdout",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			archive, err := c.ExportCheckpoint(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			defer archive.Close()
			_, err = io.Copy(cmd.OutOrStdout(), archive)
			return err
		},
	}
}

func newCheckpointImportCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "import ID NAME < FILE",
		Short: "read a checkpoint archive from stdin as checkpoint NAME of ID",
		Long: `Read a tar archive made by troupe checkpoint export (on this daemon or another)
from stdin, store it as the checkpoint NAME of the container ID and print the
name; troupe start ID BUNDLE --checkpoint NAME then restores it.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			cp, err := c.ImportCheckpoint(cmd.Context(), args[0], args[1], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return o.output(cmd, cp, func(w io.Writer) error { return printLine(w, cp.Name) })
		},
	}
}

func newCheckpointCreateCommand(o *globalOptions) *cobra.Command {
	var req api.CheckpointRequest
	cmd := &cobra.Command{
		Use:   "create ID NAME",
		Short: "checkpoint a container",
		Long: `Dump the container ID with CRIU as the checkpoint NAME, and print the name. The
container keeps running unless --exit.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			cp, err := c.Checkpoint(cmd.Context(), args[0], args[1], req)
			if err != nil {
				return err
			}
			return o.output(cmd, cp, func(w io.Writer) error { return printLine(w, cp.Name) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&req.Exit, "exit", false, "stop the container after the dump")
	f.BoolVar(&req.TCP, "tcp", false, "checkpoint established TCP connections")
	f.BoolVar(&req.UnixSockets, "unix-sockets", false, "checkpoint external unix sockets")
	f.BoolVar(&req.Shell, "shell", false, "allow a shell job (a process with a terminal)")
	return cmd
}

func newCheckpointListCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls ID",
		Aliases: []string{"list"},
		Short:   "list the checkpoints of a container",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			cps, err := c.Checkpoints(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cps == nil {
				cps = []api.Checkpoint{}
			}
			return o.output(cmd, cps, func(w io.Writer) error { return writeCheckpoints(w, cps) })
		},
	}
}

func newCheckpointRemoveCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID NAME",
		Aliases: []string{"remove", "delete"},
		Short:   "remove a checkpoint",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeleteCheckpoint(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			if o.json {
				return nil
			}
			return printLine(cmd.OutOrStdout(), args[1])
		},
	}
}
