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
	"strconv"

	"github.com/troupe-run/troupe/api"
)

// EventsRequest selects the events of GET /events.
type EventsRequest struct {
	// Since, if set, replays the events still buffered after that id before
	// the live ones.
	Since *uint64
	// Container, if set, keeps only that container's events.
	Container string
}

// Events streams the daemon's lifecycle events (GET /events) until ctx ends
// or the daemon closes the stream. Events come in order on the first
// channel, which is closed when the stream ends. The second channel then
// yields the reason, if any, and is closed: nothing when the daemon closed
// the stream, ctx.Err() when ctx ended, the error otherwise (a refused
// request is an *APIError).
//
// The stream's goroutine ends when the stream does; a caller that stops
// reading before that must cancel ctx.
func (c *Client) Events(ctx context.Context, req EventsRequest) (<-chan api.Event, <-chan error) {
	evs := make(chan api.Event)
	errs := make(chan error, 1)
	go func() {
		// The error is sent before the events channel closes, so a caller
		// that ranges over events and then reads errs sees it.
		defer close(errs)
		defer close(evs)
		if err := c.streamEvents(ctx, req, evs); err != nil {
			errs <- err
		}
	}()
	return evs, errs
}

func (c *Client) streamEvents(ctx context.Context, req EventsRequest, evs chan<- api.Event) error {
	q := url.Values{}
	if req.Since != nil {
		q.Set("since", strconv.FormatUint(*req.Since, 10))
	}
	if req.Container != "" {
		q.Set("container", req.Container)
	}
	const path = "/events"
	resp, err := c.send(ctx, nethttp.MethodGet, path, q, nil, "application/x-ndjson")
	if err != nil {
		return err
	}
	// Closed, not drained: a live stream has no end to drain to.
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		// ReadBytes, not a Scanner: a line has no length limit to trip on.
		line, rerr := r.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			var ev api.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				if ctx.Err() != nil {
					return ctx.Err() // a line cut short by the cancellation
				}
				return fmt.Errorf("GET %s: decode event: %w", path, err)
			}
			select {
			case evs <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("GET %s: %w", path, rerr)
		}
	}
}
