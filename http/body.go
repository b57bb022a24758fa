package http

import (
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
)

// BodyIdleTimeout is how long a request body may send nothing before the
// request is refused (400) and its connection closed. It bounds the wait
// for each piece of a body, not for the whole: an archive of gigabytes
// takes as long as it takes, as long as it keeps coming.
const BodyIdleTimeout = 10 * time.Second

// errBodyStalled is the read error of a body that stopped coming.
type errBodyStalled struct{ idle time.Duration }

func (e *errBodyStalled) Error() string {
	return fmt.Sprintf("the request body stopped coming: nothing for %v", e.idle)
}

// bodyDeadline puts a read deadline on a request's body, moved forward on
// every read, so that a client that stops sending (or never sends the bytes
// its Content-Length promised) costs a connection and a handler for
// BodyIdleTimeout at most. The deadline is set at once, for a handler that
// never reads the body: net/http reads what is left of it after the answer.
//
// Requests without a body get none: while a handler runs, net/http keeps a
// read pending on the connection to notice a client that goes away, and a
// deadline would end it, and with it the request's context, after
// BodyIdleTimeout (an event stream lasts for hours). For the same reason
// the deadline is lifted once the body has been read to its end.
func (s *Server) bodyDeadline(c *gin.Context) {
	body := c.Request.Body
	if body == nil || body == nethttp.NoBody {
		return
	}
	rc := nethttp.NewResponseController(c.Writer)
	b := &deadlineBody{body: body, rc: rc, idle: s.cfg.BodyIdleTimeout}
	if b.extend() != nil {
		return // not a connection that has deadlines
	}
	c.Request.Body = b
}

// deadlineBody is a request body whose connection's read deadline follows
// the reads.
type deadlineBody struct {
	body io.ReadCloser
	rc   *nethttp.ResponseController
	idle time.Duration
	done bool
}

func (b *deadlineBody) extend() error { return b.rc.SetReadDeadline(time.Now().Add(b.idle)) }

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	_ = b.extend()
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return n, &errBodyStalled{idle: b.idle}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }
