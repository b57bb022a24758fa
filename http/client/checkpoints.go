package client

import (
	"context"
	"io"
	nethttp "net/http"

	"github.com/troupe-run/troupe/api"
)

// Checkpoint dumps the container id with CRIU as the checkpoint name (POST
// /containers/{id}/checkpoint/{name}).
func (c *Client) Checkpoint(ctx context.Context, id, name string, req api.CheckpointRequest) (api.Checkpoint, error) {
	var cp api.Checkpoint
	p, err := checkpointPath(id, name)
	if err != nil {
		return cp, err
	}
	err = c.do(ctx, nethttp.MethodPost, p, nil, req, &cp)
	return cp, err
}

// Checkpoints returns the checkpoints of the container id (GET
// /containers/{id}/checkpoint); they outlive the container.
func (c *Client) Checkpoints(ctx context.Context, id string) ([]api.Checkpoint, error) {
	p, err := containerPath(id, "/checkpoint")
	if err != nil {
		return nil, err
	}
	var cps []api.Checkpoint
	err = c.do(ctx, nethttp.MethodGet, p, nil, nil, &cps)
	return cps, err
}

// DeleteCheckpoint removes the checkpoint name of the container id (DELETE
// /containers/{id}/checkpoint/{name}).
func (c *Client) DeleteCheckpoint(ctx context.Context, id, name string) error {
	p, err := checkpointPath(id, name)
	if err != nil {
		return err
	}
	return c.do(ctx, nethttp.MethodDelete, p, nil, nil, nil)
}

// ExportCheckpoint returns checkpoint id/name as a tar stream
// (GET .../checkpoint/{name}/archive); the caller closes it.
func (c *Client) ExportCheckpoint(ctx context.Context, id, name string) (io.ReadCloser, error) {
	p, err := checkpointPath(id, name)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, nethttp.MethodGet, p+"/archive", nil, nil, "application/x-tar")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImportCheckpoint sends a tar stream made by ExportCheckpoint (on this
// daemon or another) as checkpoint id/name (PUT .../archive).
func (c *Client) ImportCheckpoint(ctx context.Context, id, name string, archive io.Reader) (api.Checkpoint, error) {
	p, err := checkpointPath(id, name)
	if err != nil {
		return api.Checkpoint{}, err
	}
	var cp api.Checkpoint
	err = c.do(ctx, nethttp.MethodPut, p+"/archive", nil, archive, &cp)
	return cp, err
}

func checkpointPath(id, name string) (string, error) {
	seg, err := segment("checkpoint name", name)
	if err != nil {
		return "", err
	}
	return containerPath(id, "/checkpoint/", seg)
}
