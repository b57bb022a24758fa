package remote

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/criu"
)

// The kinds of frame.
const (
	kindCall   = "call"   // client → server: a request, answered by one reply
	kindCancel = "cancel" // client → server: cancel the call ID's context
	kindReply  = "reply"  // server → client: the answer to call ID
	kindExit   = "exit"   // server → client: process P has exited
	kindOOM    = "oom"    // server → client: an OOM kill in container C
)

// maxFrame bounds a frame's JSON, against a peer that sends garbage.
const maxFrame = 16 << 20

// maxFDs is how many descriptors one read can bring (a frame brings at
// most three, a process's stdio).
const maxFDs = 32

// frame is every message of the protocol; which fields are set depends on
// its Kind and, for a call, its Op. One struct rather than one per message:
// the decoding is a single json.Unmarshal, and no registry of types is
// needed.
type frame struct {
	Kind string `json:"k"`
	// ID is the call's number, chosen by the client, unique on the
	// connection; a reply and a cancel carry the call's.
	ID uint64 `json:"id,omitempty"`
	Op string `json:"op,omitempty"`
	// Deadline is the call's context deadline in Unix nanoseconds, 0 for
	// none.
	Deadline int64 `json:"dl,omitempty"`
	// FDs is how many descriptors came with the frame (SCM_RIGHTS), in
	// the order of Stdio.
	FDs int `json:"fds,omitempty"`

	// The arguments of a call.
	C          uint64                     `json:"c,omitempty"`    // container handle (and in an oom frame)
	P          uint64                     `json:"p,omitempty"`    // prepared handle (and process handle in an exit frame)
	Name       string                     `json:"name,omitempty"` // container id
	Start      *runtime.StartOptions      `json:"start,omitempty"`
	Bundle     string                     `json:"bundle,omitempty"`
	Pid        int                        `json:"pid,omitempty"`
	Sig        int                        `json:"sig,omitempty"`
	Spec       *runtime.ProcessSpec       `json:"spec,omitempty"`
	Stdio      []int                      `json:"stdio,omitempty"` // which of 0, 1, 2, 3 (stdin, stdout, stderr, console socket) came as FDs
	Res        *runtime.Resources         `json:"res,omitempty"`
	Dir        string                     `json:"dir,omitempty"`
	Checkpoint *runtime.CheckpointOptions `json:"ckpt,omitempty"`
	Force      bool                       `json:"force,omitempty"`
	Claim      *runtime.ClaimOptions      `json:"claim,omitempty"`

	// The answer of a reply: Err, or Result (absent when the call returns
	// nothing).
	Result json.RawMessage `json:"r,omitempty"`
	Err    *wireError      `json:"e,omitempty"`

	// Status is an exit frame's exit status.
	Status *exitStatus `json:"st,omitempty"`
}

// exitStatus is runtime.ExitStatus on the wire.
type exitStatus struct {
	Code   int   `json:"code"`
	Signal int   `json:"sig,omitempty"`
	At     int64 `json:"at"` // Unix nanoseconds
}

func toExitStatus(st runtime.ExitStatus) *exitStatus {
	return &exitStatus{Code: st.Code, Signal: int(st.Signal), At: st.At.UnixNano()}
}

func (e *exitStatus) status() runtime.ExitStatus {
	return runtime.ExitStatus{Code: e.Code, Signal: syscall.Signal(e.Signal), At: time.Unix(0, e.At)}
}

// containerMsg is a container handed to the client: Start, Load and Claim
// answer it.
type containerMsg struct {
	H      uint64     `json:"h"`
	ID     string     `json:"id"`
	Bundle string     `json:"bundle"`
	Log    string     `json:"log"`
	Init   processMsg `json:"init"`
	// Join is what the container joined (runtime.Container.Joined).
	Join []runtime.Join `json:"join,omitempty"`
}

// processMsg is a process handed to the client; H names it in its exit
// frame.
type processMsg struct {
	H    uint64              `json:"h"`
	Pid  int                 `json:"pid"`
	Spec runtime.ProcessSpec `json:"spec"`
}

// preparedMsg is a prepared container handed to the client.
type preparedMsg struct {
	H      uint64 `json:"h"`
	Bundle string `json:"bundle"`
}

// wireError is an error on the wire: its message, and the sentinels it
// matched with errors.Is on the server, by name.
type wireError struct {
	Msg     string   `json:"m"`
	Classes []string `json:"c,omitempty"`
}

// classes are the sentinel errors that keep their identity across the
// wire: the error classes, a context's end, and CRIU's ErrStuck (which the
// actors tell apart from a mere deadline).
var classes = [...]struct {
	name string
	err  error
}{
	{"not-found", errclass.NotFound},
	{"already-exists", errclass.AlreadyExists},
	{"invalid-argument", errclass.InvalidArgument},
	{"failed-precondition", errclass.FailedPrecondition},
	{"unavailable", errclass.Unavailable},
	{"deadline-exceeded", context.DeadlineExceeded},
	{"canceled", context.Canceled},
	{"criu-stuck", criu.ErrStuck},
}

func toWire(err error) *wireError {
	w := &wireError{Msg: err.Error()}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			w.Classes = append(w.Classes, c.name)
		}
	}
	return w
}

// remoteError is an error that came over the wire: the server's message,
// and errors.Is true for the sentinels the server's error matched.
type remoteError struct {
	msg     string
	classes []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.classes }

func fromWire(w *wireError) error {
	e := &remoteError{msg: w.Msg}
	for _, name := range w.Classes {
		for _, c := range classes {
			if c.name == name {
				e.classes = append(e.classes, c.err)
			}
		}
	}
	return e
}

// wire is one end of the connection: frames are a 4-byte big-endian length
// and that many bytes of JSON. Descriptors travel as SCM_RIGHTS with the
// first byte of the frame that counts them; the kernel never delivers them
// after that byte, so they are queued as they come and the frame that
// counts them takes them from the front of the queue.
type wire struct {
	conn *net.UnixConn

	// Used by the one reader.
	buf  []byte // buf[r:w] is read and not yet decoded
	r, w int
	oob  []byte
	fds  []*os.File // received, not yet taken by a frame

	wmu sync.Mutex // one frame at a time
}

func newWire(conn *net.UnixConn) *wire {
	return &wire{conn: conn, buf: make([]byte, 64<<10), oob: make([]byte, syscall.CmsgSpace(4*maxFDs))}
}

// read returns the next frame and the descriptors that came with it.
func (w *wire) read() (*frame, []*os.File, error) {
	for {
		if n := w.w - w.r; n >= 4 {
			size := int(binary.BigEndian.Uint32(w.buf[w.r:]))
			if size > maxFrame {
				return nil, nil, fmt.Errorf("frame of %d bytes, more than %d", size, maxFrame)
			}
			if n >= 4+size {
				body := w.buf[w.r+4 : w.r+4+size]
				w.r += 4 + size
				f := new(frame)
				if err := json.Unmarshal(body, f); err != nil {
					return nil, nil, fmt.Errorf("decode a frame: %w", err)
				}
				if f.FDs < 0 || f.FDs > len(w.fds) {
					return nil, nil, fmt.Errorf("a frame counts %d descriptors, %d came", f.FDs, len(w.fds))
				}
				var files []*os.File
				if f.FDs > 0 {
					files = append(files, w.fds[:f.FDs]...)
					w.fds = w.fds[f.FDs:]
				}
				return f, files, nil
			}
			if need := 4 + size; need > len(w.buf) {
				nb := make([]byte, max(need, 2*len(w.buf)))
				w.w = copy(nb, w.buf[w.r:w.w])
				w.r = 0
				w.buf = nb
			}
		}
		if w.r > 0 {
			w.w = copy(w.buf, w.buf[w.r:w.w])
			w.r = 0
		}
		n, oobn, flags, _, err := w.conn.ReadMsgUnix(w.buf[w.w:], w.oob)
		if oobn > 0 {
			if perr := w.takeFDs(w.oob[:oobn]); perr != nil && err == nil {
				err = perr
			}
		}
		if err == nil && flags&syscall.MSG_CTRUNC != 0 {
			err = errors.New("descriptors lost: control message truncated")
		}
		w.w += n
		if err != nil {
			return nil, nil, err
		}
		if n == 0 && oobn == 0 {
			return nil, nil, io.EOF
		}
	}
}

func (w *wire) takeFDs(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("parse control message: %w", err)
	}
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			w.fds = append(w.fds, os.NewFile(uintptr(fd), "remote-fd"))
		}
	}
	return nil
}

// close closes the descriptors received that no frame took.
func (w *wire) close() {
	closeFiles(w.fds)
	w.fds = nil
}

// write sends f with files' descriptors.
func (w *wire) write(f *frame, files []*os.File) error {
	f.FDs = len(files)
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode a frame: %w", err)
	}
	if len(body) > maxFrame {
		return fmt.Errorf("frame of %d bytes, more than %d", len(body), maxFrame)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	var oob []byte
	if len(files) > 0 {
		// Duplicates, not f.Fd(): Fd would put the caller's file (a pipe,
		// say) in blocking mode.
		fds, err := dupAll(files)
		if err != nil {
			return err
		}
		defer func() {
			for _, fd := range fds {
				syscall.Close(fd)
			}
		}()
		oob = syscall.UnixRights(fds...)
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	n, _, err := w.conn.WriteMsgUnix(buf, oob, nil)
	for err == nil && n < len(buf) {
		var m int
		m, err = w.conn.Write(buf[n:])
		n += m
	}
	return err
}

func dupAll(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for _, f := range files {
		sc, err := f.SyscallConn()
		if err != nil {
			return closeFDs(fds, fmt.Errorf("descriptor of %s: %w", f.Name(), err))
		}
		var dup int
		var derr error
		if err := sc.Control(func(fd uintptr) {
			r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
			dup = int(r)
			if e != 0 {
				derr = e
			}
		}); err != nil {
			derr = err
		}
		if derr != nil {
			return closeFDs(fds, fmt.Errorf("duplicate the descriptor of %s: %w", f.Name(), derr))
		}
		fds = append(fds, dup)
	}
	return fds, nil
}

func closeFDs(fds []int, err error) ([]int, error) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
	return nil, err
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
