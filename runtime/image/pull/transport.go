package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/troupe-run/troupe/errclass"
)

// dialFunc dials a connection; tests replace it to see every address the
// puller connects to.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// newTransport returns the round tripper every registry request goes
// through: plain HTTP only where allowed, and no request that may wait
// longer than idle for the registry's next byte.
func newTransport(idle time.Duration, plainOK func(hostport string) bool, dial dialFunc) http.RoundTripper {
	if dial == nil {
		dial = (&net.Dialer{Timeout: idle, KeepAlive: 30 * time.Second}).DialContext
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   idle,
		ResponseHeaderTimeout: idle,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	return &guardTransport{next: base, idle: idle, plainOK: plainOK}
}

// guardTransport enforces, for every request including each hop of a
// redirect (a registry may send blobs to a CDN), that plain HTTP goes only
// to an allowed host: ggcr itself falls back to HTTP for RFC 1918
// addresses, and a redirect could downgrade any pull to HTTP. The check is
// made before the request reaches the dialer, so a refused host is never
// contacted.
type guardTransport struct {
	next    http.RoundTripper
	idle    time.Duration
	plainOK func(hostport string) bool
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "https":
	case "http":
		if !t.plainOK(req.URL.Host) {
			closeBody(req)
			return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf(
				"plain HTTP to %s refused: only registries on loopback or listed as insecure are reached without TLS", req.URL.Host))
		}
	default:
		closeBody(req)
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("scheme %q of %s refused", req.URL.Scheme, req.URL.Redacted()))
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = newIdleBody(resp.Body, t.idle, req.URL.Host, cancel)
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// errIdle is the cause of a request cancelled because its body stalled.
var errIdle = errors.New("registry sent nothing")

// idleBody cancels its request when no byte arrives for idle: the header
// timeout covers a registry that never answers, this one a registry that
// stops in the middle of a blob.
type idleBody struct {
	rc     io.ReadCloser
	idle   time.Duration
	host   string
	cancel context.CancelCauseFunc
	timer  *time.Timer

	mu      sync.Mutex
	expired bool
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, host string, cancel context.CancelCauseFunc) *idleBody {
	b := &idleBody{rc: rc, idle: idle, host: host, cancel: cancel}
	b.timer = time.AfterFunc(idle, func() {
		b.mu.Lock()
		b.expired = true
		b.mu.Unlock()
		cancel(errIdle)
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	expired := b.expired
	b.mu.Unlock()
	if expired {
		return n, errclass.With(errclass.Unavailable, fmt.Errorf("%s: %w for %v", b.host, errIdle, b.idle))
	}
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// plainHTTPAllowed reports whether hostport (host or host:port, as in a URL
// or a reference) may be reached over plain HTTP: loopback, or listed.
func plainHTTPAllowed(hostport string, insecure []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, entry := range insecure {
		if strings.EqualFold(entry, hostport) || strings.EqualFold(entry, host) {
			return true
		}
	}
	return false
}
