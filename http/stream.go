package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/containerlog"
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
			fail(c, fmt.Errorf("query since=%q: want an event id: %w", v, errclass.InvalidArgument))
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

// logs serves the init's captured stdout and stderr, as lines. Queries:
// follow=true keeps sending what is written until the container stops or
// the client goes away; tail=N sends only the last N lines; since=TIME only
// those written from TIME on (RFC 3339, Unix seconds, or a duration before
// now such as 10m); timestamps=true and streams=true start each line with
// its time and its stream (stdout or stderr).
func (s *Server) logs(c *gin.Context) {
	q, err := parseLogQuery(c, time.Now())
	if err != nil {
		fail(c, err)
		return
	}
	ctx, id := c.Request.Context(), c.Param("id")
	logPath, err := s.cfg.Supervisor.LogPath(ctx, id)
	if err != nil {
		fail(c, err)
		return
	}
	if len(containerlog.Files(logPath)) == 0 {
		fail(c, fmt.Errorf("logs of container %q: %w", id, errclass.NotFound))
		return
	}
	w := c.Writer
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(nethttp.StatusOK)
	var line []byte
	write := func(l containerlog.Line) error {
		line = line[:0]
		if q.timestamps {
			line = l.Time.UTC().AppendFormat(line, time.RFC3339Nano)
			line = append(line, ' ')
		}
		if q.streams {
			line = append(line, l.Stream.String()...)
			line = append(line, ' ')
		}
		line = append(line, l.Content...)
		if !l.Partial {
			line = append(line, '\n')
		}
		_, err := w.Write(line)
		return err
	}
	if !q.follow {
		if !q.noPast {
			_ = containerlog.Read(logPath, q.read, write)
		}
		return
	}
	// Each poll that found something is flushed to the client.
	flushing := func(l containerlog.Line) error {
		if err := write(l); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	stopped := func() bool {
		cur, ok := s.cfg.Supervisor.State().Get(id)
		return !ok || cur.State.Status == api.Stopped
	}
	w.Flush()
	_ = containerlog.Follow(ctx, logPath, q.read, stopped, flushing)
}

// logQuery is what GET /containers/{id}/logs asks for.
type logQuery struct {
	follow, timestamps, streams bool
	noPast                      bool // tail=0: only what comes
	read                        containerlog.ReadOptions
}

// parseLogQuery reads the query of GET /containers/{id}/logs.
func parseLogQuery(c *gin.Context, now time.Time) (logQuery, error) {
	var q logQuery
	for name, dst := range map[string]*bool{"follow": &q.follow, "timestamps": &q.timestamps, "streams": &q.streams} {
		if v := c.Query(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return q, fmt.Errorf("query %s=%q: want true or false: %w", name, v, errclass.InvalidArgument)
			}
			*dst = b
		}
	}
	if v := c.Query("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return q, fmt.Errorf("query tail=%q: want a number of lines or all: %w", v, errclass.InvalidArgument)
		}
		q.read.Tail = n
		q.noPast = n == 0
	}
	if v := c.Query("since"); v != "" {
		since, err := parseSince(v, now)
		if err != nil {
			return q, fmt.Errorf("query since=%q: want an RFC 3339 time, Unix seconds or a duration such as 10m: %w", v, errclass.InvalidArgument)
		}
		q.read.Since = since
	}
	if q.noPast && q.read.Since.Before(now) {
		q.read.Since = now
	}
	return q, nil
}

// parseSince reads a time as docker logs --since does.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, errors.New("not a time")
	}
	var nsec int64
	if frac != "" {
		f, err := strconv.ParseFloat("0."+frac, 64)
		if err != nil {
			return time.Time{}, errors.New("not a time")
		}
		nsec = int64(f * 1e9)
	}
	return time.Unix(n, nsec), nil
}
