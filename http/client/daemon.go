package client

import (
	"context"
	nethttp "net/http"

	"github.com/troupe-run/troupe/api"
)

// State returns every container and the machine's figures (GET /state).
func (c *Client) State(ctx context.Context) (api.State, error) {
	var s api.State
	err := c.do(ctx, nethttp.MethodGet, "/state", nil, nil, &s)
	return s, err
}

// Version returns the daemon's version (GET /version).
func (c *Client) Version(ctx context.Context) (api.Version, error) {
	var v api.Version
	err := c.do(ctx, nethttp.MethodGet, "/version", nil, nil, &v)
	return v, err
}

// Health returns nil when the daemon answers GET /healthz with success.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, nethttp.MethodGet, "/healthz", nil, nil, nil)
}
