package http

import (
	"net"
	nethttp "net/http"
	"sync"
	"time"
)

// DefaultMaxConnections is the default bound on the connections a daemon
// holds open, over all its listeners. Each costs a file descriptor and a
// goroutine; the benchmark's burst of 1000 concurrent starts fits.
const DefaultMaxConnections = 1024

// The timeouts of the daemon's connections: for a request's header, and for
// a keep-alive connection between requests. A body has its own, per read
// (BodyIdleTimeout).
const (
	HeaderTimeout = 10 * time.Second
	IdleTimeout   = 2 * time.Minute
)

// HTTPServer returns the net/http server of the API, with the timeouts that
// keep a client that connects and sends nothing, or stops in the middle of a
// header, from holding its connection for ever. Serve it on listeners from
// LimitConnections.
func (s *Server) HTTPServer() *nethttp.Server {
	return &nethttp.Server{Handler: s.engine, ReadHeaderTimeout: HeaderTimeout, IdleTimeout: IdleTimeout}
}

// LimitConnections returns listeners that together serve at most max
// connections at once: once max are open, Accept waits until one closes, and
// new clients wait in the kernel's listen backlog meanwhile. The timeouts of
// HTTPServer and BodyIdleTimeout make sure that a connection that does
// nothing goes away.
func LimitConnections(ls []net.Listener, max int) []net.Listener {
	slots := make(chan struct{}, max)
	out := make([]net.Listener, len(ls))
	for i, l := range ls {
		out[i] = &limitListener{Listener: l, slots: slots, closed: make(chan struct{})}
	}
	return out
}

// limitListener is one listener of a LimitConnections group.
type limitListener struct {
	net.Listener
	slots     chan struct{} // shared by the group: one per open connection
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept implements net.Listener: it returns a connection once it has a
// slot for it. The slot is taken after the accept, not before: a listener
// waiting for its next client would otherwise keep a slot from the
// others. So each listener may hold one connection more, accepted and
// waiting for a slot.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
		return &limitConn{Conn: c, slots: l.slots}, nil
	case <-l.closed:
		c.Close()
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; an Accept waiting for a slot returns.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	slots     chan struct{}
	closeOnce sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { <-c.slots })
	return err
}
