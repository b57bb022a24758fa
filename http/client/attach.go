package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"

	"github.com/coder/websocket"

	"github.com/troupe-run/troupe/api"
)

// maxAttachMessage bounds one message from the daemon: a chunk of output
// is at most 32 KiB.
const maxAttachMessage = 1 << 20

// Stream is a client's attachment to a process's stdio (Attach): what the
// process writes comes from Recv, what the client writes goes to Stdin.
// Close detaches: the process runs on.
type Stream struct {
	conn *websocket.Conn
}

// Attach connects to the stdio the daemon keeps of process pid of
// container id (an exec with Attach, Stdin or Terminal), over a WebSocket
// (GET /containers/{id}/processes/{pid}/attach).
//
// A container's init has its output in its log: attaching to it follows
// the log from now on (with past, from its start) until the init exits.
func (c *Client) Attach(ctx context.Context, id string, pid int) (*Stream, error) {
	return c.attach(ctx, id, pid, false)
}

// AttachInit attaches to container id's init, which is pid, with what its
// log holds already when past is set: troupe run does, to miss nothing of
// a container it just started.
func (c *Client) AttachInit(ctx context.Context, id string, pid int, past bool) (*Stream, error) {
	return c.attach(ctx, id, pid, past)
}

func (c *Client) attach(ctx context.Context, id string, pid int, past bool) (*Stream, error) {
	p, err := containerPath(id, "/processes/", strconv.Itoa(pid), "/attach")
	if err != nil {
		return nil, err
	}
	if past {
		p += "?logs=true"
	}
	hdr := nethttp.Header{}
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, c.base+p, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: hdr})
	if err != nil {
		if resp != nil && resp.StatusCode != nethttp.StatusSwitchingProtocols {
			return nil, readError(resp)
		}
		return nil, fmt.Errorf("attach to process %d of container %q: %w", pid, id, err)
	}
	conn.SetReadLimit(maxAttachMessage)
	return &Stream{conn: conn}, nil
}

// Frame is one message of a Stream: output of Stream (api.StreamStdout or
// api.StreamStderr) or, for api.StreamControl, Control.
type Frame struct {
	Stream  byte
	Data    []byte
	Control *api.AttachControl
}

// ErrDetached is Recv's error once the daemon closed the stream without
// an exit: the process runs on, or its stdio went with its container.
var ErrDetached = errors.New("the daemon closed the stream before the process exited")

// Recv returns the next frame; after the "exit" control frame the daemon
// closes the stream, and Recv returns ErrDetached.
func (s *Stream) Recv(ctx context.Context) (Frame, error) {
	typ, data, err := s.conn.Read(ctx)
	if err != nil {
		if websocket.CloseStatus(err) != -1 {
			return Frame{}, ErrDetached
		}
		return Frame{}, err
	}
	if typ != websocket.MessageBinary || len(data) == 0 {
		return Frame{}, fmt.Errorf("attach: a message that is not binary or empty")
	}
	f := Frame{Stream: data[0], Data: data[1:]}
	if f.Stream == api.StreamControl {
		var m api.AttachControl
		if err := json.Unmarshal(f.Data, &m); err != nil {
			return Frame{}, fmt.Errorf("attach: control message: %w", err)
		}
		f.Control, f.Data = &m, nil
	}
	return f, nil
}

// Stdin writes p to the process's stdin.
func (s *Stream) Stdin(ctx context.Context, p []byte) error { return s.Send(ctx, api.StreamStdin, p) }

// Send sends one message of the protocol as it is: stream, then payload.
func (s *Stream) Send(ctx context.Context, stream byte, payload []byte) error {
	return s.conn.Write(ctx, websocket.MessageBinary, append([]byte{stream}, payload...))
}

// CloseStdin ends the process's input (a terminal's: end of file, as
// typed).
func (s *Stream) CloseStdin(ctx context.Context) error {
	return s.control(ctx, api.AttachControl{Type: api.ControlCloseStdin})
}

// Resize sets the process's terminal's size.
func (s *Stream) Resize(ctx context.Context, width, height int) error {
	return s.control(ctx, api.AttachControl{Type: api.ControlResize, Width: width, Height: height})
}

func (s *Stream) control(ctx context.Context, m api.AttachControl) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.Send(ctx, api.StreamControl, data)
}

// Close detaches from the process.
func (s *Stream) Close() error {
	return s.conn.Close(websocket.StatusNormalClosure, "detached")
}

// Wait waits for process pid of container id (its init or an exec'd one)
// to end, and returns how it did (GET .../processes/{pid}/wait).
func (c *Client) Wait(ctx context.Context, id string, pid int) (api.ProcessExit, error) {
	var e api.ProcessExit
	p, err := containerPath(id, "/processes/", strconv.Itoa(pid), "/wait")
	if err != nil {
		return e, err
	}
	// Not bounded by WithTimeout: a process may run for days.
	resp, err := c.send(ctx, nethttp.MethodGet, p, nil, nil, "application/json")
	if err != nil {
		return e, err
	}
	defer drainAndClose(resp.Body)
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		return e, fmt.Errorf("wait for process %d of container %q: decode answer: %w", pid, id, err)
	}
	return e, nil
}
