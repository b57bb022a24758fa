package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"strings"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// imagePath is /images/{ref}: a name keeps its slashes
// ("127.0.0.1:5000/team/app:1"), each part between them escaped.
func imagePath(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("image name or digest is required: %w", errclass.InvalidArgument)
	}
	parts := strings.Split(ref, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/images/" + strings.Join(parts, "/"), nil
}

// PullImage pulls ref (a name such as "127.0.0.1:5000/busybox:1", or
// "repo@sha256:...") into the daemon's store (POST /images) and returns the
// image once every layer is in. progress, if not nil, is called with each
// line of the pull's stream, as it comes, but the last: how far one layer
// has come.
//
// A pull that fails before its stream begins is an *APIError as usual; one
// that fails after is an *APIError too, with the code of the stream's last
// line and the stream's status (200).
func (c *Client) PullImage(ctx context.Context, ref string, progress func(api.PullProgress)) (api.Image, error) {
	return c.Pull(ctx, api.PullRequest{Reference: ref}, progress)
}

// Pull is PullImage with the whole request: credentials for the pull
// (req.Auth), for one.
func (c *Client) Pull(ctx context.Context, req api.PullRequest, progress func(api.PullProgress)) (api.Image, error) {
	const path = "/images"
	if req.Reference == "" {
		return api.Image{}, fmt.Errorf("pull: image reference is required: %w", errclass.InvalidArgument)
	}
	resp, err := c.send(ctx, nethttp.MethodPost, path, nil, req, "application/x-ndjson")
	if err != nil {
		return api.Image{}, err
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, rerr := r.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			var p api.PullProgress
			if err := json.Unmarshal(line, &p); err != nil {
				if ctx.Err() != nil {
					return api.Image{}, ctx.Err()
				}
				return api.Image{}, fmt.Errorf("POST %s: decode pull progress: %w", path, err)
			}
			switch {
			case p.Error != nil:
				return api.Image{}, &APIError{Status: resp.StatusCode, Code: p.Error.Code, Message: p.Error.Error}
			case p.Image != nil:
				return *p.Image, nil
			case progress != nil:
				progress(p)
			}
		}
		switch {
		case rerr == nil:
		case ctx.Err() != nil:
			return api.Image{}, ctx.Err()
		case errors.Is(rerr, io.EOF):
			return api.Image{}, fmt.Errorf("POST %s: pull of %s: the stream ended without its last line (the daemon stopped?): %w",
				path, req.Reference, errclass.Unavailable)
		default:
			return api.Image{}, fmt.Errorf("POST %s: pull of %s: %w", path, req.Reference, rerr)
		}
	}
}

// Images returns every image in the daemon's store, by digest (GET
// /images).
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var list api.ImageList
	err := c.do(ctx, nethttp.MethodGet, "/images", nil, nil, &list)
	return list.Images, err
}

// Image returns the image a name or digest refers to (GET /images/{ref}).
func (c *Client) Image(ctx context.Context, ref string) (api.Image, error) {
	var img api.Image
	p, err := imagePath(ref)
	if err != nil {
		return img, err
	}
	err = c.do(ctx, nethttp.MethodGet, p, nil, nil, &img)
	return img, err
}

// RemoveImage removes the name ref, or with a digest the image and all its
// names (DELETE /images/{ref}), and returns what was removed. An image that
// containers use is refused (errclass.FailedPrecondition) unless force.
func (c *Client) RemoveImage(ctx context.Context, ref string, force bool) (api.Image, error) {
	var img api.Image
	p, err := imagePath(ref)
	if err != nil {
		return img, err
	}
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	err = c.do(ctx, nethttp.MethodDelete, p, q, nil, &img)
	return img, err
}

// ExportImage returns the image ref as an OCI image layout in a tar archive
// (GET /images/{ref}?archive=oci), which ImportImages (on this daemon or
// another), skopeo and podman read. The caller closes it.
func (c *Client) ExportImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	p, err := imagePath(ref)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, nethttp.MethodGet, p, url.Values{"archive": {"oci"}}, nil, "application/x-tar")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImportImages sends an OCI image layout in a tar archive (ExportImage's,
// skopeo's oci-archive, podman save --format oci-archive) to the daemon's
// store (POST /images/import) and returns the images it held.
func (c *Client) ImportImages(ctx context.Context, archive io.Reader) ([]api.Image, error) {
	var l api.ImageList
	err := c.do(ctx, nethttp.MethodPost, "/images/import", nil, archive, &l)
	return l.Images, err
}
