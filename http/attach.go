package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors/stdio"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// maxAttachMessage bounds one message from an attached client: a piece of
// stdin or a control message.
const maxAttachMessage = 1 << 20

// attachWriteTimeout is how long one message to a client may take: a
// client that reads nothing for that long is taken for gone (its process's
// output is kept meanwhile, up to the session's bound).
const attachWriteTimeout = time.Minute

// attachProcess connects a client to the stdio the daemon keeps of a
// process, over a WebSocket (the protocol is api.StreamStdin's).
func (s *Server) attachProcess(c *gin.Context) {
	pid, err := pidParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	past := false
	if v := c.Query("logs"); v != "" {
		if past, err = strconv.ParseBool(v); err != nil {
			fail(c, fmt.Errorf("query logs=%q: want true or false: %w", v, errclass.InvalidArgument))
			return
		}
	}
	at, err := s.cfg.Supervisor.Attach(c.Request.Context(), c.Param("id"), pid)
	if err != nil {
		fail(c, err)
		return
	}
	if !websocketRequest(c) {
		fail(c, fmt.Errorf("attach is a WebSocket: the request must ask to upgrade (Connection: Upgrade, Upgrade: websocket): %w", errclass.InvalidArgument))
		return
	}
	var att *stdio.Attachment
	if at.Session != nil {
		if att, err = at.Session.Attach(); err != nil {
			fail(c, err)
			return
		}
		defer att.Detach()
	}
	if at.InitLog != "" {
		s.attachLog(c, pid, at.InitLog, past, att)
		return
	}
	conn, ctx, cancel, ok := acceptAttach(c, att)
	if !ok {
		return
	}
	defer cancel()
	for {
		ev, err := att.Next(ctx)
		if errors.Is(err, io.EOF) {
			_ = conn.Close(websocket.StatusNormalClosure, "the process exited")
			return
		}
		if err != nil {
			_ = conn.Close(websocket.StatusNormalClosure, "detached")
			return
		}
		var msg []byte
		switch {
		case ev.Exit != nil:
			msg = control(api.AttachControl{Type: api.ControlExit, Exit: processExit(ev.Exit.Code, ev.Exit.Signal)})
		case ev.Dropped > 0:
			msg = control(api.AttachControl{Type: api.ControlDropped, Dropped: ev.Dropped})
		default:
			stream := api.StreamStdout
			if ev.Stream == stdio.Stderr {
				stream = api.StreamStderr
			}
			msg = append([]byte{stream}, ev.Data...)
		}
		if err := writeAttached(ctx, conn, msg); err != nil {
			_ = conn.CloseNow()
			return
		}
	}
}

// websocketRequest says whether the request asks for a WebSocket.
func websocketRequest(c *gin.Context) bool {
	h := c.Request.Header
	return headerHas(h.Values("Connection"), "upgrade") && headerHas(h.Values("Upgrade"), "websocket")
}

// acceptAttach takes the connection over and reads what the client sends,
// for att (nil: an init without a kept stdin), until it goes: ctx ends
// then. ok is false when the upgrade failed (Accept answered the client).
func acceptAttach(c *gin.Context, att *stdio.Attachment) (conn *websocket.Conn, ctx context.Context, cancel context.CancelFunc, ok bool) {
	conn, err := websocket.Accept(c.Writer, c.Request, nil)
	if err != nil {
		return nil, nil, nil, false
	}
	conn.SetReadLimit(maxAttachMessage)
	// The connection is the handler's now: the server no longer watches
	// it, so its own reads say when the client goes.
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		defer cancel()
		readAttached(ctx, conn, att)
	}()
	return conn, ctx, cancel, true
}

// readAttached handles what the client sends until it goes; with no
// attachment, it refuses everything: the process has no stdin to write.
func readAttached(ctx context.Context, conn *websocket.Conn, att *stdio.Attachment) {
	refuse := func(why error) bool {
		return writeAttached(ctx, conn, control(api.AttachControl{Type: api.ControlError, Error: why.Error()})) == nil
	}
	if att == nil {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
			if !refuse(errors.New("the init's stdin is not open, nor has it a terminal: it was started without them")) {
				return
			}
		}
	}
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageBinary || len(data) == 0 {
			if !refuse(fmt.Errorf("a message must be binary, its first byte its stream")) {
				return
			}
			continue
		}
		switch data[0] {
		case api.StreamStdin:
			if _, err := att.Write(data[1:]); err != nil && !refuse(err) {
				return
			}
		case api.StreamControl:
			if err := handleControl(data[1:], att); err != nil && !refuse(err) {
				return
			}
		default:
			if !refuse(fmt.Errorf("stream %d: a client sends only stdin (0) and control (3)", data[0])) {
				return
			}
		}
	}
}

// handleControl does what a client's control message asks.
func handleControl(data []byte, att *stdio.Attachment) error {
	var m api.AttachControl
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("control message: %v", err)
	}
	switch m.Type {
	case api.ControlResize:
		return att.Resize(m.Width, m.Height)
	case api.ControlCloseStdin:
		return att.CloseStdin()
	}
	return fmt.Errorf("control message of type %q: want %q or %q", m.Type, api.ControlResize, api.ControlCloseStdin)
}

func writeAttached(ctx context.Context, conn *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, attachWriteTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageBinary, msg)
}

// control is a control message of the attach protocol.
func control(m api.AttachControl) []byte {
	data, _ := json.Marshal(m)
	return append([]byte{api.StreamControl}, data...)
}

// headerHas says whether a comma-separated header holds token, in any case.
func headerHas(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// attachLog connects a client to a container's init whose output goes to
// its log: what the log gets from now on (with past, all it holds first),
// stream by stream, then the init's exit. Its stdin is stdin's, when the
// daemon keeps it.
func (s *Server) attachLog(c *gin.Context, pid int, logPath string, past bool, stdin *stdio.Attachment) {
	id := c.Param("id")
	conn, ctx, cancel, ok := acceptAttach(c, stdin)
	if !ok {
		return
	}
	defer cancel()
	var o containerlog.ReadOptions
	if !past {
		o.Since = time.Now()
	}
	stopped := func() bool {
		cur, ok := s.cfg.Supervisor.State().Get(id)
		return !ok || cur.State.Status == api.Stopped
	}
	var msg []byte
	err := containerlog.Follow(ctx, logPath, o, stopped, func(l containerlog.Line) error {
		stream := api.StreamStdout
		if l.Stream == containerlog.Stderr {
			stream = api.StreamStderr
		}
		msg = append(append(msg[:0], stream), l.Content...)
		if !l.Partial {
			msg = append(msg, '\n')
		}
		return writeAttached(ctx, conn, msg)
	})
	if err != nil || ctx.Err() != nil {
		_ = conn.Close(websocket.StatusNormalClosure, "detached")
		return
	}
	st, err := s.cfg.Supervisor.Wait(ctx, id, pid)
	if err != nil {
		_ = conn.Close(websocket.StatusNormalClosure, "detached")
		return
	}
	if writeAttached(ctx, conn, control(api.AttachControl{Type: api.ControlExit, Exit: processExit(st.Code, st.Signal)})) == nil {
		_ = conn.Close(websocket.StatusNormalClosure, "the process exited")
	}
}
