package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/http/client"
)

func newEventsCommand(o *globalOptions) *cobra.Command {
	var (
		since     uint64
		container string
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "print lifecycle events as they happen",
		Long: `Print the daemon's lifecycle events as they happen, one a line, until
interrupted (Ctrl-C ends it cleanly):

  TIME ID TYPE CONTAINER [pid=N] [exit=N]

Types: start, exit, exec, process-exit, pause, resume, checkpoint, restore, oom,
delete; and gap (from=N missed=N) where this client fell behind and events were
lost. With --json each event is the API's JSON object on its own line.`,
		Example: `  troupe events --container redis
  troupe events --since 0 --json | jq .`,
		GroupID: groupDaemon,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := client.EventsRequest{Container: container}
			if cmd.Flags().Changed("since") {
				req.Since = &since
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			evs, errs := c.Events(ctx, req)
			w := cmd.OutOrStdout()
			enc := json.NewEncoder(w) // compact: one event a line
			for ev := range evs {
				var err error
				if o.json {
					err = enc.Encode(ev)
				} else {
					_, err = fmt.Fprintln(w, formatEvent(ev, time.Local))
				}
				if err != nil {
					return err // the deferred stop ends the stream
				}
			}
			if err := <-errs; err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&since, "since", 0, "first replay the events still buffered after this event `ID` (0: all)")
	f.StringVar(&container, "container", "", "only the events of the container `ID`")
	return cmd
}
