package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/runtime"
)

// keepAlive is how often an idle event stream sends something, so that
// proxies and clients can tell a quiet daemon from a dead connection.
const keepAlive = 15 * time.Second

// events streams lifecycle events: newline-delimited JSON, or server-sent
// events when the client accepts text/event-stream.
func (s *Server) events(c *gin.Context) {
	f := events.Filter{Container: c.Query("container")}
	if f.Container != "" {
		if err := runtime.ValidID("container id", f.Container); err != nil {
			fail(c, err)
			return
		}
	}
	if v, ok := c.GetQuery("since"); ok {
		since, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			fail(c, fmt.Errorf("query since=%q: want an event id: %w", v, runtime.ErrInvalidArgument))
			return
		}
		f.Replay, f.Since = true, since
	}
	sse := strings.Contains(c.GetHeader("Accept"), "text/event-stream")
	sub := s.cfg.Supervisor.Events().Subscribe(f)
	defer sub.Close()

	w := c.Writer
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(nethttp.StatusOK)
	w.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	enc := json.NewEncoder(w)
	for {
		select {
		case e, ok := <-sub.C():
			if !ok {
				return // the daemon is shutting down
			}
			var err error
			if sse {
				data, _ := json.Marshal(e)
				_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, data)
			} else {
				err = enc.Encode(e)
			}
			if err != nil {
				return
			}
			w.Flush()
		case <-tick.C:
			if sse {
				_, _ = io.WriteString(w, ": keep-alive\n\n")
			} else {
				_, _ = io.WriteString(w, "\n")
			}
			w.Flush()
		case <-c.Request.Context().Done():
			return
		}
	}
}

// logPoll is how often a followed log is checked for more output.
const logPoll = 100 * time.Millisecond

// logs serves the init's captured stdout and stderr; with follow=true it
// keeps sending what is written until the container stops or the client
// goes away.
func (s *Server) logs(c *gin.Context) {
	follow := false
	if v := c.Query("follow"); v != "" {
		var err error
		if follow, err = strconv.ParseBool(v); err != nil {
			fail(c, fmt.Errorf("query follow=%q: want true or false: %w", v, runtime.ErrInvalidArgument))
			return
		}
	}
	ctx, id := c.Request.Context(), c.Param("id")
	info, err := s.cfg.Supervisor.Get(ctx, id)
	if err != nil {
		fail(c, err)
		return
	}
	f, err := os.Open(info.LogPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fail(c, fmt.Errorf("logs of container %q: %w", id, runtime.ErrNotFound))
			return
		}
		fail(c, fmt.Errorf("logs of container %q: %w", id, err))
		return
	}
	defer f.Close()
	w := c.Writer
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(nethttp.StatusOK)
	if _, err := io.Copy(w, f); err != nil || !follow {
		return
	}
	w.Flush()
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := io.Copy(w, f)
		if err != nil {
			return
		}
		if n > 0 {
			w.Flush()
			continue
		}
		// Nothing new: stop once the container has stopped (its last
		// words were copied above) or is gone.
		if cur, ok := s.cfg.Supervisor.State().Get(id); !ok || cur.State.Status == runtime.Stopped {
			if n, _ := io.Copy(w, f); n > 0 {
				w.Flush()
			}
			return
		}
	}
}
