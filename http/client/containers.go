package client

import (
	"context"
	"io"
	nethttp "net/http"
	"net/url"
	"strconv"

	"github.com/troupe-run/troupe/api"
)

// Start creates and starts the container id (POST /containers/{id}) and
// returns it once its init runs.
func (c *Client) Start(ctx context.Context, id string, req api.StartRequest) (api.Container, error) {
	var info api.Container
	p, err := containerPath(id)
	if err != nil {
		return info, err
	}
	err = c.do(ctx, nethttp.MethodPost, p, nil, req, &info)
	return info, err
}

// Get returns the container id (GET /containers/{id}).
func (c *Client) Get(ctx context.Context, id string) (api.Container, error) {
	var info api.Container
	p, err := containerPath(id)
	if err != nil {
		return info, err
	}
	err = c.do(ctx, nethttp.MethodGet, p, nil, nil, &info)
	return info, err
}

// List returns every container, sorted by id (the containers of GET
// /state).
func (c *Client) List(ctx context.Context) ([]*api.Container, error) {
	s, err := c.State(ctx)
	return s.Containers, err
}

// Exec starts a process in the running container id (PUT
// /containers/{id}/processes).
func (c *Client) Exec(ctx context.Context, id string, req api.ExecRequest) (api.Process, error) {
	var proc api.Process
	p, err := containerPath(id, "/processes")
	if err != nil {
		return proc, err
	}
	err = c.do(ctx, nethttp.MethodPut, p, nil, req, &proc)
	return proc, err
}

// Signal sends sig to the process pid (a host pid) of the container id
// (POST /containers/{id}/process/{pid}).
func (c *Client) Signal(ctx context.Context, id string, pid int, sig int) error {
	p, err := containerPath(id, "/process/", strconv.Itoa(pid))
	if err != nil {
		return err
	}
	sg := api.Signal(sig)
	return c.do(ctx, nethttp.MethodPost, p, nil, api.SignalRequest{Signal: &sg}, nil)
}

// Kill sends sig to the init of the container id (PATCH /containers/{id}
// with {"signal": sig}).
func (c *Client) Kill(ctx context.Context, id string, sig int) error {
	sg := api.Signal(sig)
	_, err := c.patch(ctx, id, api.PatchRequest{Signal: &sg})
	return err
}

// Pause freezes every process of the container id; pausing a paused
// container succeeds.
func (c *Client) Pause(ctx context.Context, id string) (api.Container, error) {
	return c.patch(ctx, id, api.PatchRequest{Status: ptr(api.Paused)})
}

// Resume thaws the paused container id.
func (c *Client) Resume(ctx context.Context, id string) (api.Container, error) {
	return c.patch(ctx, id, api.PatchRequest{Status: ptr(api.Running)})
}

// Update changes the resource limits of the running container id; nil
// fields of r stay as they are.
func (c *Client) Update(ctx context.Context, id string, r api.Resources) (api.Container, error) {
	return c.patch(ctx, id, api.PatchRequest{Resources: &r})
}

func (c *Client) patch(ctx context.Context, id string, req api.PatchRequest) (api.Container, error) {
	var info api.Container
	p, err := containerPath(id)
	if err != nil {
		return info, err
	}
	err = c.do(ctx, nethttp.MethodPatch, p, nil, req, &info)
	return info, err
}

// Delete removes the stopped container id and everything it left (DELETE
// /containers/{id}); with force a running container is killed first.
func (c *Client) Delete(ctx context.Context, id string, force bool) error {
	p, err := containerPath(id)
	if err != nil {
		return err
	}
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return c.do(ctx, nethttp.MethodDelete, p, q, nil, nil)
}

// Stats returns the cgroup figures of the container id (GET
// /containers/{id}/stats).
func (c *Client) Stats(ctx context.Context, id string) (api.Stats, error) {
	var st api.Stats
	p, err := containerPath(id, "/stats")
	if err != nil {
		return st, err
	}
	err = c.do(ctx, nethttp.MethodGet, p, nil, nil, &st)
	return st, err
}

// LogOptions choose what Logs reads.
type LogOptions struct {
	// Follow goes on as the container writes, until ctx ends or the
	// container stops.
	Follow bool
	// Tail, when positive, reads only the last Tail lines; when negative,
	// none of the past (with Follow, only what comes); 0 reads all.
	Tail int
	// Since, when set, reads only what was written from then on: an RFC
	// 3339 time, Unix seconds, or a duration before now such as "10m".
	Since string
	// Timestamps and Streams start each line with its time (RFC 3339) and
	// its stream (stdout or stderr).
	Timestamps, Streams bool
}

// Logs returns what the init of the container id wrote to stdout and
// stderr, as lines (GET /containers/{id}/logs). The caller must close it.
func (c *Client) Logs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error) {
	p, err := containerPath(id, "/logs")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if o.Follow {
		q.Set("follow", "true")
	}
	switch {
	case o.Tail > 0:
		q.Set("tail", strconv.Itoa(o.Tail))
	case o.Tail < 0:
		q.Set("tail", "0")
	}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	if o.Streams {
		q.Set("streams", "true")
	}
	if len(q) == 0 {
		q = nil
	}
	resp, err := c.send(ctx, nethttp.MethodGet, p, q, nil, "*/*")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func ptr[T any](v T) *T { return &v }
