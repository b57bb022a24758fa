package events

import "github.com/troupe-run/troupe/api"

// ring is a FIFO of events bounded by limit. Its storage grows on demand up
// to the limit, so an idle log or a subscriber that keeps up costs a few
// events of memory rather than the whole bound.
type ring struct {
	buf   []api.Event
	head  int
	n     int
	limit int
}

func newRing(limit int) ring {
	return ring{limit: limit}
}

func (r *ring) len() int   { return r.n }
func (r *ring) full() bool { return r.n >= r.limit }

// push appends e. The caller makes room first: the ring never decides on its
// own what to drop, because the log and a subscription drop differently.
func (r *ring) push(e api.Event) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[r.index(r.n)] = e
	r.n++
}

// pop removes and returns the oldest event.
func (r *ring) pop() api.Event {
	e := r.buf[r.head]
	r.buf[r.head] = api.Event{} // let an ExitStatus be collected
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.n--
	return e
}

// at returns the i-th oldest event, 0 being the oldest.
func (r *ring) at(i int) api.Event {
	return r.buf[r.index(i)]
}

func (r *ring) index(i int) int {
	j := r.head + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return j
}

func (r *ring) grow() {
	size := min(max(2*len(r.buf), 16), r.limit)
	if size <= len(r.buf) {
		panic("events: push on a full ring") // a bug in this package, not a runtime condition
	}
	buf := make([]api.Event, size)
	n := copy(buf, r.buf[r.head:])
	copy(buf[n:], r.buf[:r.head])
	r.buf = buf
	r.head = 0
}
