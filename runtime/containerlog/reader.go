package containerlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Line is one line of output as read back: the records of one stream up
// to and including one that ends the line, joined. A line still being
// written (its last record is partial) has Partial set.
type Line struct {
	Time    time.Time // of its first record
	Stream  Stream
	Content []byte // without the newline
	Partial bool
}

// ReadOptions choose what to read.
type ReadOptions struct {
	// Tail keeps only the last Tail lines; 0 means all.
	Tail int
	// Since drops the lines written before it; zero means none.
	Since time.Time
}

// Read calls fn with the lines of the log at path, oldest first, as o
// chooses.
func Read(path string, o ReadOptions, fn func(Line) error) error {
	files := Files(path)
	if len(files) == 0 {
		return fmt.Errorf("log %s: %w", path, os.ErrNotExist)
	}
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		return err
	}
	defer f.Close()
	var p parser
	if _, err := readPast(files[:len(files)-1], f, &p, o, fn); err != nil {
		return err
	}
	return p.flush(o.Since, fn)
}

// readPast calls fn with the lines of the older files and of cur, the
// current file, as o chooses, and returns how much of cur it read: up to
// its last whole record. The lines cur leaves partial stay in p.
func readPast(older []string, cur *os.File, p *parser, o ReadOptions, fn func(Line) error) (int64, error) {
	if o.Tail <= 0 {
		for _, f := range older {
			if err := readFile(f, o.Since, fn); err != nil {
				return 0, err
			}
		}
		return p.read(cur, o.Since, fn)
	}
	// Newest file first, until Tail lines are found: the older files of a
	// big log are not read for a short tail.
	var chunks [][]Line
	collect := func(lines *[]Line) func(Line) error {
		return func(l Line) error {
			*lines = append(*lines, l)
			return nil
		}
	}
	var last []Line
	n, err := p.read(cur, o.Since, collect(&last))
	if err != nil {
		return 0, err
	}
	chunks = append(chunks, last)
	found := len(last)
	for i := len(older) - 1; i >= 0 && found < o.Tail; i-- {
		var lines []Line
		if err := readFile(older[i], o.Since, collect(&lines)); err != nil {
			return 0, err
		}
		chunks = append(chunks, lines)
		found += len(lines)
	}
	skip := max(found-o.Tail, 0)
	for i := len(chunks) - 1; i >= 0; i-- {
		for _, l := range chunks[i] {
			if skip > 0 {
				skip--
				continue
			}
			if err := fn(l); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// readFile reads one whole file of a log.
func readFile(path string, since time.Time, fn func(Line) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated away meanwhile
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var p parser
	if _, err := p.read(f, since, fn); err != nil {
		return err
	}
	return p.flush(since, fn)
}

// parser joins records into lines; it holds the partial lines of each
// stream between reads.
type parser struct {
	pending [3]*Line
}

// read parses the whole records of r, calling fn with each line that ends
// and whose first record is not before since, and returns the bytes it
// consumed: up to the end of the last whole record.
func (p *parser) read(r io.Reader, since time.Time, fn func(Line) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		rec, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Not a record of ours (too long): skip the rest of it.
			n += int64(len(rec))
			for errors.Is(err, bufio.ErrBufferFull) {
				rec, err = br.ReadSlice('\n')
				n += int64(len(rec))
			}
			continue
		}
		if err == io.EOF {
			return n, nil // a record still being written is left for later
		}
		if err != nil {
			return n, err
		}
		n += int64(len(rec))
		t, s, partial, content, ok := parseRecord(rec[:len(rec)-1])
		if !ok {
			continue
		}
		l := p.pending[s]
		if l == nil {
			l = &Line{Time: t, Stream: s}
			p.pending[s] = l
		}
		l.Content = append(l.Content, content...)
		if partial {
			continue
		}
		p.pending[s] = nil
		if !l.Time.Before(since) {
			if err := fn(*l); err != nil {
				return n, err
			}
		}
	}
}

// flush passes on the lines still partial, as such.
func (p *parser) flush(since time.Time, fn func(Line) error) error {
	for s, l := range p.pending {
		if l == nil {
			continue
		}
		p.pending[s] = nil
		l.Partial = true
		if !l.Time.Before(since) {
			if err := fn(*l); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseRecord splits "TIME STREAM TAG CONTENT".
func parseRecord(rec []byte) (t time.Time, s Stream, partial bool, content []byte, ok bool) {
	ts, rest, ok1 := bytes.Cut(rec, []byte{' '})
	stream, rest, ok2 := bytes.Cut(rest, []byte{' '})
	tag, content, ok3 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || !ok3 || len(tag) != 1 {
		return t, 0, false, nil, false
	}
	var err error
	if t, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil {
		return t, 0, false, nil, false
	}
	switch string(stream) {
	case "stdout":
		s = Stdout
	case "stderr":
		s = Stderr
	default:
		return t, 0, false, nil, false
	}
	return t, s, tag[0] == 'P', content, true
}

// followPoll is how often a followed log is checked for more output.
const followPoll = 100 * time.Millisecond

// Follow reads the log at path as Read does, then goes on reading what is
// appended, across rotations, until ctx ends, or until done reports true
// (a stopped container's log) and everything written is read.
func Follow(ctx context.Context, path string, o ReadOptions, done func() bool, fn func(Line) error) error {
	files := Files(path)
	if len(files) == 0 {
		return fmt.Errorf("log %s: %w", path, os.ErrNotExist)
	}
	cur, err := os.Open(files[len(files)-1])
	if err != nil {
		return err
	}
	defer func() { cur.Close() }()
	var p parser
	at, err := readPast(files[:len(files)-1], cur, &p, o, fn)
	if err != nil {
		return err
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		stopped := done()
		// Rotation closes the old file before the new one is made: once
		// the path names another file, the old one is read to its end.
		moved := rotatedAway(cur, path)
		if _, err := cur.Seek(at, io.SeekStart); err != nil {
			return err
		}
		n, err := p.read(cur, o.Since, fn)
		if err != nil {
			return err
		}
		at += n
		if moved {
			if next := successor(path, cur); next != nil {
				cur.Close()
				cur, at = next, 0
				continue
			}
		}
		if stopped {
			return p.flush(o.Since, fn)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// successor opens the file of the log at path that came after f: the next
// newer one, which is not always the current one when the log rotated more
// than once since f was last read. When f has been rotated out of the log
// too, it is the oldest left: what came between is lost to this reader.
func successor(path string, f *os.File) *os.File {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil
	}
	files := Files(path)
	next := 0
	for i, p := range files {
		var s unix.Stat_t
		if unix.Stat(p, &s) == nil && s.Ino == st.Ino && s.Dev == st.Dev {
			next = i + 1
		}
	}
	if next >= len(files) {
		return nil
	}
	n, err := os.Open(files[next])
	if err != nil {
		return nil
	}
	return n
}

// rotatedAway says whether path is no longer the file f.
func rotatedAway(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false
	}
	if err := unix.Stat(path, &b); err != nil {
		return false
	}
	return a.Ino != b.Ino || a.Dev != b.Dev
}
