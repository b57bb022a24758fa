package main

import (
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// The groups of `troupe --help`.
const (
	groupContainers  = "containers"
	groupImages      = "images"
	groupProcesses   = "processes"
	groupCheckpoints = "checkpoints"
	groupDaemon      = "daemon"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "troupe",
		Short: "troupe runs Linux containers from OCI bundles and images, one actor per container",
		Long: `troupe runs Linux containers from OCI bundles and images, one actor per container.

The same binary is the daemon (troupe daemon) and its command-line client: every
other command is a request to a running daemon's REST API, at --address.`,
		SilenceUsage: true,
		// Cobra prints a command's error itself, after the prefix below, so
		// that an API error reads "troupe: <the daemon's message>".
		SilenceErrors: false,
	}
	root.SetErrPrefix("troupe:")
	root.AddGroup(
		&cobra.Group{ID: groupContainers, Title: "Containers:"},
		&cobra.Group{ID: groupImages, Title: "Images:"},
		&cobra.Group{ID: groupProcesses, Title: "Processes:"},
		&cobra.Group{ID: groupCheckpoints, Title: "Checkpoints:"},
		&cobra.Group{ID: groupDaemon, Title: "Daemon:"},
	)
	opts := newGlobalOptions()
	opts.addFlags(root)

	daemon := newDaemonCommand()
	daemon.GroupID = groupDaemon
	checkCriu := newCheckCriuCommand()
	checkCriu.GroupID = groupDaemon
	root.AddCommand(daemon, checkCriu, newBundleCommand(), newEngineCheckCommand())
	root.AddCommand(newBenchCommand(opts))
	root.AddCommand(
		newStartCommand(opts),
		newPsCommand(opts),
		newStateCommand(opts),
		newInspectCommand(opts),
		newPauseCommand(opts),
		newResumeCommand(opts),
		newUpdateCommand(opts),
		newStatsCommand(opts),
		newLogsCommand(opts),
		newRmCommand(opts),
		newExecCommand(opts),
		newAttachCommand(opts),
		newKillCommand(opts),
		newTopCommand(opts),
		newPoolCommand(opts),
		newPullCommand(opts),
		newImagesCommand(opts),
		newRmiCommand(opts),
		newSaveCommand(opts),
		newLoadCommand(opts),
		newRunCommand(opts),
		newCheckpointCommand(opts),
		newMigrateCommand(opts),
		newEventsCommand(opts),
		newVersionCommand(opts),
	)
	return root
}
