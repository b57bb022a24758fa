// Package stdio is the daemon's side of a process's stdio when the daemon
// keeps it rather than handing it to the log: the pipes (or a terminal's
// master) and what the process wrote that no client has read yet.
//
// The process's output is read as it comes into a buffer of bounded size.
// While a client is attached nothing is lost: once the buffer is full the
// session stops reading, and the process waits on its pipe for the client
// to catch up, as it would writing into any pipe. While none is attached
// the process never waits: the oldest output is dropped, and the next
// client hears how much. One client is attached at a time: a second Attach
// is refused until the first detaches; a client that detaches (or goes)
// leaves the process running, and another may attach later and read on.
//
// The last thing a client reads is the exit status, after all the output:
// the session reads the process's output to its end (every copy of its
// stdout and stderr closed), but after the exit only as long as it keeps
// coming (a pause of exitGrace ends it), so that a daemonised grandchild
// that keeps them open cannot hold the exit back.
package stdio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/console"
)

// The streams of an Event; a terminal's output is all Stdout.
const (
	Stdout = 1
	Stderr = 2
)

// DefaultBuffer is how much unread output a session keeps by default.
const DefaultBuffer = 256 << 10

// exitGrace is how long output may go on after the process exited: what a
// grandchild that inherited the pipes still writes.
const exitGrace = 2 * time.Second

// chunk is how much one read of the process's output takes at most.
const chunk = 32 << 10

// Options say what a process's stdio is.
type Options struct {
	// Stdin keeps the process's stdin open for clients to write to;
	// otherwise it reads /dev/null (a terminal always has one).
	Stdin bool
	// Terminal gives the process a pty: its stdin, stdout and stderr.
	Terminal bool
	// Width and Height are the terminal's first size (0: the kernel's).
	Width, Height int
	// Buffer is how much unread output is kept; 0 means DefaultBuffer.
	Buffer int
	// LogOutput leaves the process's stdout and stderr to the caller (a
	// container's init writes to its log): only its stdin is kept. Not
	// with Terminal.
	LogOutput bool
}

// Child is what the process is given: ProcessSpec's files. Close it once
// the process started (or failed to).
type Child struct {
	Stdin, Stdout, Stderr *os.File
	ConsoleSocket         *os.File
	Width, Height         uint16
}

// Apply puts the files into spec.
func (c Child) Apply(spec *runtime.ProcessSpec) {
	spec.Stdin, spec.Stdout, spec.Stderr = c.Stdin, c.Stdout, c.Stderr
	spec.ConsoleSocket, spec.ConsoleWidth, spec.ConsoleHeight = c.ConsoleSocket, c.Width, c.Height
}

// Close closes the daemon's copies of the child's files.
func (c Child) Close() {
	for _, f := range []*os.File{c.Stdin, c.Stdout, c.Stderr, c.ConsoleSocket} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// Exit is how the process ended.
type Exit struct {
	Code   int
	Signal syscall.Signal
}

// Event is what a client reads: output of one stream, a count of output
// dropped before it, or, last, the exit.
type Event struct {
	Stream  int
	Data    []byte
	Dropped int64
	Exit    *Exit
}

// Session is the daemon's side of one process's stdio.
type Session struct {
	opts    Options
	stdin   *os.File // the pipe's write end, or the terminal's master
	outs    []*os.File
	console *os.File // the socket the terminal's master comes over

	mu       sync.Mutex
	events   []Event // unread output, oldest first
	size     int
	dropped  int64
	attached bool
	pumps    int
	exit     *Exit
	final    bool // the exit was read: nothing more comes
	closed   bool
	room     *sync.Cond    // signalled on s.mu when the buffer drains or its reader goes
	wake     chan struct{} // a buffered signal: something changed
}

// New makes the stdio of a process: the session the daemon keeps and the
// files the process gets.
func New(o Options) (*Session, Child, error) {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	s := &Session{opts: o, wake: make(chan struct{}, 1)}
	s.room = sync.NewCond(&s.mu)
	var c Child
	fail := func(err error) (*Session, Child, error) {
		c.Close()
		s.Close()
		return nil, Child{}, fmt.Errorf("stdio: %w", err)
	}
	if o.Terminal {
		if o.Width < 0 || o.Height < 0 || o.Width > console.MaxSize || o.Height > console.MaxSize {
			return nil, Child{}, fmt.Errorf("terminal size %dx%d: want 0 to %d columns and rows: %w", o.Width, o.Height, console.MaxSize, errclass.InvalidArgument)
		}
		parent, child, err := console.Socket()
		if err != nil {
			return fail(err)
		}
		s.console, c.ConsoleSocket = parent, child
		c.Width, c.Height = uint16(o.Width), uint16(o.Height)
		return s, c, nil
	}
	if o.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		c.Stdin, s.stdin = r, w
	}
	if o.LogOutput {
		return s, c, nil
	}
	for _, out := range []**os.File{&c.Stdout, &c.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		*out = w
		s.outs = append(s.outs, r)
	}
	return s, c, nil
}

// Start begins reading the process's output, once it runs; a terminal's
// master is received first (until ctx ends).
func (s *Session) Start(ctx context.Context) error {
	if s.opts.Terminal {
		m, err := console.Receive(ctx, s.console)
		_ = s.console.Close()
		s.console = nil
		if err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
		s.stdin, s.outs = m, []*os.File{m}
	}
	s.mu.Lock()
	s.pumps = len(s.outs)
	s.mu.Unlock()
	for i, f := range s.outs {
		go s.pump(f, i+1)
	}
	return nil
}

// pump reads one stream of output into the buffer until it ends.
func (s *Session) pump(f *os.File, stream int) {
	buf := make([]byte, chunk)
	for {
		if s.exited() {
			// After the exit, output may go on only as long as it keeps
			// coming (a grandchild may hold the pipe open for ever).
			_ = f.SetReadDeadline(time.Now().Add(exitGrace))
		}
		n, err := f.Read(buf)
		if n > 0 {
			s.add(Event{Stream: stream, Data: append([]byte(nil), buf[:n]...)})
		}
		if err != nil {
			// EOF: every writer closed; EIO: a terminal whose other
			// side is gone; a timeout: nothing came for exitGrace after
			// the exit; ErrClosed: the session was closed.
			break
		}
	}
	s.mu.Lock()
	s.pumps--
	s.mu.Unlock()
	s.signal()
}

// add appends output: while a client is attached it waits for room in the
// buffer; otherwise it drops the oldest beyond the buffer's size.
func (s *Session) add(e Event) {
	s.mu.Lock()
	for s.attached && !s.closed && s.size > 0 && s.size+len(e.Data) > s.opts.Buffer {
		s.room.Wait()
	}
	s.events = append(s.events, e)
	s.size += len(e.Data)
	for s.size > s.opts.Buffer && len(s.events) > 0 {
		old := s.events[0]
		s.events[0] = Event{}
		s.events = s.events[1:]
		s.size -= len(old.Data)
		s.dropped += int64(len(old.Data))
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Exited tells the session how the process ended. Its output may go on a
// short while (exitGrace); then the session stops reading.
func (s *Session) Exited(st runtime.ExitStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exit != nil || s.closed {
		return
	}
	s.exit = &Exit{Code: st.Code, Signal: st.Signal}
	// Reads under way with nothing to read end after the grace; the pumps
	// set it again before each read from now on.
	for _, f := range s.outs {
		_ = f.SetReadDeadline(time.Now().Add(exitGrace))
	}
	s.signal()
}

func (s *Session) exited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit != nil
}

// Terminal says whether the process has a terminal.
func (s *Session) Terminal() bool { return s.opts.Terminal }

// KeepsOutput says whether the session has the process's output, or only
// its stdin (LogOutput).
func (s *Session) KeepsOutput() bool { return !s.opts.LogOutput }

// Done says whether the exit was known and read.
func (s *Session) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.final
}

// Close releases the session's files; a process still running sees its
// stdin end and its output go nowhere (EPIPE).
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.room.Broadcast()
	files := append([]*os.File{s.stdin, s.console}, s.outs...)
	s.mu.Unlock()
	seen := map[*os.File]bool{}
	for _, f := range files {
		if f != nil && !seen[f] {
			seen[f] = true
			_ = f.Close()
		}
	}
	s.signal()
}

// ErrAttached refuses a second client.
var ErrAttached = fmt.Errorf("another client is attached to this process: %w", errclass.FailedPrecondition)

// Attach makes a client the reader of the process's output and the writer
// of its stdin, until it detaches.
func (s *Session) Attach() (*Attachment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("the process's stdio is closed: %w", errclass.NotFound)
	case s.final:
		return nil, fmt.Errorf("the process exited and its exit was read: %w", errclass.NotFound)
	case s.attached:
		return nil, ErrAttached
	}
	s.attached = true
	if s.stdin != nil {
		_ = s.stdin.SetWriteDeadline(time.Time{})
	}
	return &Attachment{s: s}, nil
}

// Attachment is an attached client's hold on the session.
type Attachment struct {
	s        *Session
	detached atomic.Bool
}

// Next returns the next event for the client: output, a count of output
// dropped, or the exit, after which it returns io.EOF.
func (a *Attachment) Next(ctx context.Context) (Event, error) {
	s := a.s
	for {
		s.mu.Lock()
		switch {
		case a.detached.Load():
			s.mu.Unlock()
			return Event{}, errDetached
		case s.dropped > 0:
			e := Event{Dropped: s.dropped}
			s.dropped = 0
			s.mu.Unlock()
			return e, nil
		case len(s.events) > 0:
			e := s.events[0]
			s.events[0] = Event{}
			s.events = s.events[1:]
			s.size -= len(e.Data)
			s.room.Broadcast()
			s.mu.Unlock()
			return e, nil
		case s.final:
			s.mu.Unlock()
			return Event{}, io.EOF
		case s.exit != nil && s.pumps == 0:
			s.final = true
			e := Event{Exit: s.exit}
			s.mu.Unlock()
			return e, nil
		case s.closed:
			s.mu.Unlock()
			return Event{}, fmt.Errorf("the process's stdio was closed: %w", errclass.NotFound)
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

var errDetached = errors.New("stdio: detached")

// Write writes p to the process's stdin.
func (a *Attachment) Write(p []byte) (int, error) {
	s := a.s
	if s.stdin == nil {
		return 0, fmt.Errorf("the process's stdin is not open (ask for stdin when starting it): %w", errclass.FailedPrecondition)
	}
	if a.detached.Load() {
		return 0, errDetached
	}
	n, err := s.stdin.Write(p)
	if err != nil {
		return n, fmt.Errorf("write to stdin: %w", err)
	}
	return n, nil
}

// CloseStdin ends the process's input: it reads EOF. A terminal gets the
// end-of-file character instead, as typed.
func (a *Attachment) CloseStdin() error {
	s := a.s
	if s.stdin == nil {
		return nil
	}
	if s.opts.Terminal {
		_, err := a.Write([]byte{4})
		return err
	}
	return s.stdin.Close()
}

// Resize sets the terminal's size.
func (a *Attachment) Resize(width, height int) error {
	if !a.s.opts.Terminal {
		return fmt.Errorf("the process has no terminal to resize: %w", errclass.FailedPrecondition)
	}
	return console.Resize(a.s.stdin, width, height)
}

// Detach lets the session go: the process runs on, its output kept for the
// next client. A write to stdin under way is cut short.
func (a *Attachment) Detach() {
	if a.detached.Swap(true) {
		return
	}
	s := a.s
	if s.stdin != nil {
		_ = s.stdin.SetWriteDeadline(time.Unix(1, 0))
	}
	s.mu.Lock()
	s.attached = false
	s.room.Broadcast()
	s.mu.Unlock()
	s.signal()
}
