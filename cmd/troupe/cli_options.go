package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/http/client"
)

// Environment variables that change the defaults of the global flags.
const (
	envAddress   = "TROUPE_ADDRESS"
	envTokenFile = "TROUPE_TOKEN_FILE"
)

// globalOptions are the root's persistent flags, shared by every client
// command: where the daemon is, how to authenticate, how to print.
type globalOptions struct {
	address   string
	tokenFile string
	json      bool
}

func newGlobalOptions() *globalOptions {
	o := &globalOptions{address: client.DefaultAddress}
	if a := os.Getenv(envAddress); a != "" {
		o.address = a
	}
	o.tokenFile = os.Getenv(envTokenFile)
	return o
}

func (o *globalOptions) addFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&o.address, "address", o.address,
		"the daemon's `URL`: unix:///path, tcp://host:port or http://host:port (env "+envAddress+")")
	f.StringVar(&o.tokenFile, "token-file", o.tokenFile,
		"send the bearer token in this `file` (env "+envTokenFile+")")
	f.BoolVar(&o.json, "json", false, "print the API's JSON instead of text (events: one per line)")
}

// client returns a client of the daemon the flags name.
func (o *globalOptions) client() (*client.Client, error) {
	var opts []client.Option
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read token file: %w", err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("token file %s is empty", o.tokenFile)
		}
		opts = append(opts, client.WithToken(token))
	}
	return client.New(o.address, opts...)
}

// output prints v as indented JSON with --json, else calls text.
func (o *globalOptions) output(cmd *cobra.Command, v any, text func(w io.Writer) error) error {
	if o.json {
		return writeJSON(cmd.OutOrStdout(), v)
	}
	return text(cmd.OutOrStdout())
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printLine writes the values and a newline to w: the text output of commands
// that print only an id or a pid.
func printLine(w io.Writer, a ...any) error {
	_, err := fmt.Fprintln(w, a...)
	return err
}

// interruptible returns the command's context, ended by SIGINT or SIGTERM as
// well: the streams (events, logs --follow) run until interrupted, and an
// interruption is their normal end.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}
