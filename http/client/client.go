package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
)

// DefaultAddress is the daemon's default listener.
const DefaultAddress = "unix:///run/troupe/troupe.sock"

// maxConns is how many connections the transport keeps open for reuse: the
// benchmark fires a thousand starts at once, and a connection closed after
// each answer would cost a connect (and a TIME_WAIT socket on TCP) per
// request.
const maxConns = 1024

// Client talks to one troupe daemon. It is safe for concurrent use; make one
// and share it.
type Client struct {
	// base is the scheme, host and path prefix of every request URL, with no
	// trailing slash: "http://troupe" for a unix socket.
	base    string
	http    *nethttp.Client
	token   string
	timeout time.Duration
}

// Option changes how New makes a Client.
type Option func(*settings)

type settings struct {
	token       string
	httpClient  *nethttp.Client
	timeout     time.Duration
	dialTimeout time.Duration
}

// WithToken makes the client send "Authorization: Bearer <token>" with every
// request, as a daemon configured with --token-file requires.
func WithToken(token string) Option {
	return func(s *settings) { s.token = token }
}

// WithHTTPClient makes the client send its requests through hc instead of a
// transport of its own. The client then only builds URLs from the address:
// for a unix socket, hc's transport must dial the socket itself. For tests,
// tracing or custom TLS.
func WithHTTPClient(hc *nethttp.Client) Option {
	return func(s *settings) { s.httpClient = hc }
}

// WithTimeout bounds each request that is answered at once (everything but
// the streams of Events and Logs) in addition to its context. Zero, the
// default, leaves it to the context: a start can wait a long time behind a
// thousand others.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// WithDialTimeout bounds how long connecting to the daemon may take
// (default 30s).
func WithDialTimeout(d time.Duration) Option {
	return func(s *settings) { s.dialTimeout = d }
}

// New returns a client of the daemon at address: "unix:///path/to.sock" (or
// just "/path/to.sock"), "tcp://host:port", or "http://host:port" and
// "https://host:port" (a path after the port is kept as a prefix of every
// request path).
func New(address string, opts ...Option) (*Client, error) {
	s := settings{dialTimeout: 30 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	base, socket, err := parseAddress(address)
	if err != nil {
		return nil, err
	}
	hc := s.httpClient
	if hc == nil {
		hc = &nethttp.Client{Transport: newTransport(socket, s.dialTimeout)}
	}
	return &Client{base: base, http: hc, token: s.token, timeout: s.timeout}, nil
}

// Close closes the connections the client keeps for reuse. The client stays
// usable: a later request opens a new one.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// parseAddress returns the base URL of requests to address and, for a unix
// socket, the socket's path.
func parseAddress(address string) (base, socket string, err error) {
	if strings.HasPrefix(address, "/") {
		address = "unix://" + address
	}
	scheme, rest, ok := strings.Cut(address, "://")
	if !ok {
		return "", "", fmt.Errorf("address %q: want unix:///path, tcp://host:port or http://host:port: %w", address, errclass.InvalidArgument)
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return "", "", fmt.Errorf("address %q: no socket path: %w", address, errclass.InvalidArgument)
		}
		// The host of the URL is never resolved: the transport dials the
		// socket whatever it says.
		return "http://troupe", rest, nil
	case "tcp", "http", "https":
		if scheme == "tcp" {
			scheme = "http"
		}
		u, err := url.Parse(scheme + "://" + rest)
		if err != nil {
			return "", "", fmt.Errorf("address %q: %w: %w", address, err, errclass.InvalidArgument)
		}
		if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return "", "", fmt.Errorf("address %q: want %s://host:port: %w", address, scheme, errclass.InvalidArgument)
		}
		return strings.TrimSuffix(u.String(), "/"), "", nil
	default:
		return "", "", fmt.Errorf("address %q: unknown scheme %q, want unix, tcp, http or https: %w", address, scheme, errclass.InvalidArgument)
	}
}

func newTransport(socket string, dialTimeout time.Duration) *nethttp.Transport {
	t := &nethttp.Transport{
		// No proxy, whatever the environment says: the API is
		// root-equivalent, and the daemon is local or on a trusted network.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		MaxConnsPerHost:     0, // no limit: a burst of starts must not queue in the client
		IdleConnTimeout:     90 * time.Second,
		// Streams (events, logs) must reach the reader as they come; a
		// transparent gunzip would only add buffering.
		DisableCompression:    true,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if socket != "" {
		t.DialContext = dialUnix(socket, dialTimeout)
	}
	return t
}

// dialUnix returns a DialContext that connects to the unix socket path
// whatever address it is asked for. A unix socket whose accept backlog is
// full refuses a non-blocking connect with EAGAIN where TCP would queue the
// SYN, so a burst of connects retries for up to timeout instead of failing.
func dialUnix(path string, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		deadline := time.Now().Add(timeout)
		backoff := time.Millisecond
		for {
			conn, err := d.DialContext(ctx, "unix", path)
			if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().Add(backoff).After(deadline) {
				return conn, err
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, err
			case <-t.C:
			}
			backoff = min(2*backoff, 100*time.Millisecond)
		}
	}
}

// do sends a request answered at once and decodes the JSON of a 2xx answer
// into out, unless out is nil. in, unless nil, is sent as the JSON body.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, query, in, "application/json")
	if err != nil {
		return err
	}
	defer drainAndClose(resp.Body)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns the response when its status is 2xx (any
// 2xx: a daemon answering 200 where the contract says 201 has still done
// it). Otherwise it returns the daemon's error as an *APIError, the body
// read and closed.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any, accept string) (*nethttp.Response, error) {
	var body io.Reader
	contentType := "application/json"
	if r, ok := in.(io.Reader); ok {
		// A stream (a checkpoint archive) goes as it is.
		body, contentType = r, "application/x-tar"
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "troupe-client")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer drainAndClose(resp.Body)
		return nil, readError(resp)
	}
	return resp, nil
}

// transportError names the request without the made-up host of a unix
// socket URL, and classes a daemon that cannot be reached as unavailable.
func transportError(method, path string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var operr *net.OpError
	if errors.As(err, &operr) && operr.Op == "dial" {
		return fmt.Errorf("%s %s: %w", method, path, errclass.With(errclass.Unavailable, err))
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// drainAndClose reads what is left of a small answer so that its connection
// can be reused, then closes it.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// segment escapes one path segment; what names it ("container id",
// "checkpoint name") goes into the error when it is empty, since an empty
// segment would make another route of the path.
func segment(what, s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%s is required: %w", what, errclass.InvalidArgument)
	}
	return url.PathEscape(s), nil
}

// containerPath is /containers/{id} followed by rest, id escaped.
func containerPath(id string, rest ...string) (string, error) {
	seg, err := segment("container id", id)
	if err != nil {
		return "", err
	}
	return "/containers/" + seg + strings.Join(rest, ""), nil
}
