package main

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/troupe-run/troupe/api"
)

// daemonVersionTimeout bounds how long `troupe version` waits for the
// daemon: the client's own version must not hang on a daemon that is away.
const daemonVersionTimeout = 3 * time.Second

// clientVersion is the client half of `troupe version --json`.
type clientVersion struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// versions is the document of `troupe version --json`; Daemon is left out
// when the daemon did not answer.
type versions struct {
	Client clientVersion `json:"client"`
	Daemon *api.Version  `json:"daemon,omitempty"`
}

func newVersionCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of this binary and of the daemon",
		Long: `Print the version of this binary and, if the daemon answers at --address, the
daemon's. A daemon that does not answer is noted on stderr; it is not an error.`,
		GroupID: groupDaemon,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versions{Client: clientVersion{Version: version, Go: goruntime.Version(), OS: goruntime.GOOS, Arch: goruntime.GOARCH}}
			if dv, err := daemonVersion(cmd.Context(), o); err != nil {
				cmd.PrintErrln("daemon:", err)
			} else {
				v.Daemon = &dv
			}
			return o.output(cmd, v, func(w io.Writer) error {
				if _, err := fmt.Fprintf(w, "troupe %s (%s, %s/%s)\n", v.Client.Version, v.Client.Go, v.Client.OS, v.Client.Arch); err != nil {
					return err
				}
				if v.Daemon == nil {
					return nil
				}
				if _, err := fmt.Fprintf(w, "daemon %s (%s, runc %s)\n", v.Daemon.Version, v.Daemon.Go, v.Daemon.Runc); err != nil {
					return err
				}
				if c := v.Daemon.Criu; c != nil {
					line := fmt.Sprintf("criu %s (%s): %s", c.Version, c.Path, c.Status)
					if c.Error != "" {
						line += ": " + c.Error
					}
					_, err := fmt.Fprintln(w, line)
					return err
				}
				return nil
			})
		},
	}
}

func daemonVersion(ctx context.Context, o *globalOptions) (api.Version, error) {
	c, err := o.client()
	if err != nil {
		return api.Version{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, daemonVersionTimeout)
	defer cancel()
	return c.Version(ctx)
}
