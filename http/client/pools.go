package client

import (
	"context"
	"fmt"
	nethttp "net/http"

	"github.com/troupe-run/troupe/api"
)

func poolPath(name string) (string, error) {
	seg, err := segment("pool name", name)
	if err != nil {
		return "", err
	}
	return "/pools/" + seg, nil
}

// SetPool creates warm pool name or resizes it to size (PUT
// /pools/{name}); bundlePath may be left empty when resizing.
func (c *Client) SetPool(ctx context.Context, name, bundlePath string, size int) (api.Pool, error) {
	var p api.Pool
	path, err := poolPath(name)
	if err != nil {
		return p, err
	}
	err = c.do(ctx, nethttp.MethodPut, path, nil, api.PoolRequest{BundlePath: bundlePath, Size: &size}, &p)
	return p, err
}

// SetImagePool creates warm pool name for containers started from an image
// with the overrides of start, or resizes it (PUT /pools/{name}); a start
// from that image with the same overrides claims from it.
func (c *Client) SetImagePool(ctx context.Context, name string, start api.ImageStart, size int) (api.Pool, error) {
	var p api.Pool
	path, err := poolPath(name)
	if err != nil {
		return p, err
	}
	err = c.do(ctx, nethttp.MethodPut, path, nil, api.PoolRequest{ImageStart: start, Size: &size}, &p)
	return p, err
}

// Pool returns warm pool name (GET /pools/{name}).
func (c *Client) Pool(ctx context.Context, name string) (api.Pool, error) {
	var p api.Pool
	path, err := poolPath(name)
	if err != nil {
		return p, err
	}
	err = c.do(ctx, nethttp.MethodGet, path, nil, nil, &p)
	return p, err
}

// Pools returns every warm pool (GET /pools).
func (c *Client) Pools(ctx context.Context) ([]api.Pool, error) {
	var ps []api.Pool
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
