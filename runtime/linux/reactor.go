package linux

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A reactor watches the descriptors of every container of a Runtime (pidfds,
// log pipes, OOM eventfds or inotify descriptors) from one goroutine and no
// OS thread of its own.
// A goroutine blocked in a syscall per container holds an OS thread (and its
// stacks) each, and a goroutine on the netpoller per container still costs a
// stack and, for the log pump, a copy buffer for ever: with thousands of
// containers that is most of the daemon's memory.
//
// Its own epoll instance is readable while any of its descriptors is ready,
// so that instance is itself put on Go's netpoller: the loop goroutine parks
// like any network read until something happens.
//
// Inner descriptors are level-triggered: a handler that leaves data unread is
// simply called again, and a descriptor that stays ready for ever (an exited
// pidfd, a pipe at EOF) must be removed by its handler, or the loop would
// spin.
type reactor struct {
	ep   *os.File // the epoll instance, on the netpoller
	epfd int

	mu     sync.Mutex
	regs   map[uint64]registration
	nextID uint64
	closed bool // no more registrations

	closeOnce sync.Once

	// buf and scratch are scratch space for handlers, which all run on the
	// loop goroutine: one buffer for all containers instead of one each.
	// buf takes what a pipe holds; scratch, what goes into a log for it.
	buf, scratch []byte
	// done is closed when the loop has returned.
	done chan struct{}
}

// registration is one watched descriptor.
type registration struct {
	fd      int
	handler func(events uint32) bool
	release func()
}

// reactorBufSize is what a handler may read in one go; a pipe holds 64 KiB
// by default, so a full one empties in two reads.
const reactorBufSize = 32 << 10

// maxEvents is how many ready descriptors one epoll_wait returns.
const maxEvents = 64

var errReactorClosed = errors.New("reactor closed")

func newReactor() (*reactor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Only a non-blocking descriptor goes on the netpoller (os.NewFile);
	// epoll_wait itself is bounded by its timeout, not by this flag.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: set non-blocking: %w", err)
	}
	r := &reactor{
		ep:   os.NewFile(uintptr(epfd), "reactor-epoll"),
		epfd: epfd,
		regs: make(map[uint64]registration),
		buf:  make([]byte, reactorBufSize),
		done: make(chan struct{}),
	}
	raw, err := r.ep.SyscallConn()
	if err != nil {
		r.ep.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	go r.loop(raw)
	return r, nil
}

// add watches fd for events and calls handler, on the loop goroutine, when
// any is ready. The handler must not block for long, since it holds up every
// other container, and must not call add or remove. When it returns false
// the descriptor is taken out of the set and release (if not nil) is called,
// still on the loop goroutine: release is where the owner closes it. fd must
// stay open until then. The returned id is for remove.
func (r *reactor) add(fd int, events uint32, handler func(events uint32) bool, release func()) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errReactorClosed
	}
	r.nextID++
	id := r.nextID
	// The event carries the registration's id, not the descriptor: a
	// descriptor number freed and reused while its old event is still in the
	// loop's batch must not reach the new owner's handler.
	ev := unix.EpollEvent{Events: events}
	setEventID(&ev, id)
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return 0, fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	r.regs[id] = registration{fd: fd, handler: handler, release: release}
	return id, nil
}

// remove stops watching the registration id and calls its release; once it
// returns, the handler is not running and is not called again.
func (r *reactor) remove(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop(id)
}

// drop takes registration id out of the set, before its descriptor is
// closed: a descriptor whose open file is shared with another process (a
// pipe taken with pidfd_getfd) would otherwise stay in the epoll set. r.mu
// is held.
func (r *reactor) drop(id uint64) {
	reg, ok := r.regs[id]
	if !ok {
		return
	}
	delete(r.regs, id)
	// The epoll descriptor is still open: close drops every registration
	// before it closes the instance.
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, reg.fd, nil)
	if reg.release != nil {
		reg.release()
	}
}

func (r *reactor) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// len is the number of watched descriptors.
func (r *reactor) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.regs)
}

// close stops the loop, releases every registration without calling its
// handler again, and closes the epoll instance.
func (r *reactor) close() {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		for id := range r.regs {
			r.drop(id)
		}
		r.mu.Unlock()
		// Wakes the parked loop with an error; the descriptor itself is
		// closed once the loop's read has let go of it.
		r.ep.Close()
		<-r.done
	})
}

// loop waits for ready descriptors and runs their handlers.
func (r *reactor) loop(raw interface {
	Read(func(fd uintptr) bool) error
}) {
	defer close(r.done)
	events := make([]unix.EpollEvent, maxEvents)
	for {
		var waitErr error
		err := raw.Read(func(fd uintptr) bool {
			for {
				n, err := unix.EpollWait(int(fd), events, 0)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					waitErr = err
					return true
				}
				if n == 0 {
					// Nothing ready: park on the netpoller until the
					// epoll instance becomes readable again.
					return false
				}
				for i := range events[:n] {
					r.dispatch(eventID(&events[i]), events[i].Events)
				}
				if r.isClosed() {
					// Let the read see the close rather than wait again.
					return true
				}
			}
		})
		if err != nil || waitErr != nil || r.isClosed() {
			// Closed, or an epoll instance that cannot be waited on: then
			// new registrations fail rather than never hear back.
			r.mu.Lock()
			r.closed = true
			r.mu.Unlock()
			return
		}
	}
}

// dispatch calls the handler of registration id, unless it has been
// removed since its event was collected. The lock is held across the call so
// that remove never releases a descriptor a handler is still using.
func (r *reactor) dispatch(id uint64, events uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg, ok := r.regs[id]
	if !ok || r.closed {
		return
	}
	if !reg.handler(events) {
		r.drop(id)
	}
}

// The kernel's epoll_data is a 64-bit union that x/sys/unix splits into Fd
// and Pad on the architectures the daemon runs on.
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
