package client

import (
	"context"
	"fmt"
	nethttp "net/http"

	"github.com/troupe-run/troupe/actors"
)

// PoolRequest is the body of PUT /pools/{name}.
type PoolRequest struct {
	// BundlePath is the bundle the pool prepares containers of; it may be
	// left empty when resizing.
	BundlePath string `json:"bundlePath,omitempty"`
	// Size is how many prepared containers to keep ready.
	Size int `json:"size"`
}

func poolPath(name string) (string, error) {
	seg, err := segment("pool name", name)
	if err != nil {
		return "", err
	}
	return "/pools/" + seg, nil
}

// SetPool creates warm pool name or resizes it (PUT /pools/{name}).
func (c *Client) SetPool(ctx context.Context, name string, req PoolRequest) (actors.PoolInfo, error) {
	var p actors.PoolInfo
	path, err := poolPath(name)
	if err != nil {
		return p, err
	}
	err = c.do(ctx, nethttp.MethodPut, path, nil, req, &p)
	return p, err
}

// Pool returns warm pool name (GET /pools/{name}).
func (c *Client) Pool(ctx context.Context, name string) (actors.PoolInfo, error) {
	var p actors.PoolInfo
	path, err := poolPath(name)
	if err != nil {
		return p, err
	}
	err = c.do(ctx, nethttp.MethodGet, path, nil, nil, &p)
	return p, err
}

// Pools returns every warm pool (GET /pools).
func (c *Client) Pools(ctx context.Context) ([]actors.PoolInfo, error) {
	var ps []actors.PoolInfo
	err := c.do(ctx, nethttp.MethodGet, "/pools", nil, nil, &ps)
	return ps, err
}

// DeletePool removes warm pool name and its prepared containers (DELETE
// /pools/{name}).
func (c *Client) DeletePool(ctx context.Context, name string) error {
	path, err := poolPath(name)
	if err != nil {
		return fmt.Errorf("delete pool: %w", err)
	}
	return c.do(ctx, nethttp.MethodDelete, path, nil, nil, nil)
}
