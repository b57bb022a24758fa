// Package client is the Go client of troupe's REST API, whose contract is
// package api. The troupe command-line client, the benchmark and the
// acceptance tests use it. It imports only api, errclass, the standard
// library and github.com/coder/websocket (for Attach; it has no
// dependencies of its own), so a program links no part of the daemon by
// using it.
//
// # Connecting
//
// New takes the daemon's address: a unix socket (the daemon's default), a
// loopback TCP port, or an http(s) URL. Make one Client and share it: it is
// safe for concurrent use, and its transport keeps up to a thousand
// connections open for reuse, so a burst of concurrent starts does not pay a
// connect per request.
//
//	c, err := client.New("unix:///run/troupe/troupe.sock")
//	c, err := client.New("tcp://127.0.0.1:8888", client.WithToken(token))
//
// # Calls
//
// One method per endpoint, the context first. They take and return the
// types of package api:
//
//	info, err := c.Start(ctx, "redis", api.StartRequest{BundlePath: "/containers/redis"})
//	proc, err := c.Exec(ctx, "redis", api.ExecRequest{Args: []string{"redis-cli", "ping"}})
//	err = c.Signal(ctx, "redis", proc.Pid, 15)
//	err = c.Delete(ctx, "redis", true)
//
// # Images
//
// PullImage pulls into the daemon's store, reporting each layer's progress;
// Start with ImageStart set runs a container from an image of the store:
//
//	img, err := c.PullImage(ctx, "127.0.0.1:5000/busybox:1", func(p api.PullProgress) {
//		fmt.Println(p.Layer, p.Done, p.Total)
//	})
//	info, err := c.Start(ctx, "web", api.StartRequest{ImageStart: api.ImageStart{
//		Image: "127.0.0.1:5000/busybox:1", Pull: api.PullMissing,
//		Args:  []string{"httpd", "-f"},
//	}})
//
// # Errors
//
// A request the daemon refuses returns an *APIError holding the status, the
// error code and the daemon's message unchanged. It belongs to troupe's
// error classes (package errclass), so callers decide with errors.Is:
//
//	_, err := c.Get(ctx, "nope")
//	errors.Is(err, errclass.NotFound) // true: the daemon answered 404, not_found
//
// A daemon that cannot be reached at all gives an error of class
// errclass.Unavailable.
//
// # Streams
//
// Events and Logs stream until the context ends or the daemon closes the
// stream. Events delivers one api.Event per line of the daemon's
// newline-delimited JSON:
//
//	evs, errs := c.Events(ctx, client.EventsRequest{Container: "redis"})
//	for ev := range evs {
//		fmt.Println(ev.ID, ev.Type, ev.Pid)
//	}
//	if err := <-errs; err != nil { ... }
package client
