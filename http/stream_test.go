package http

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
)

func TestStatsAndLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.startContainer("talk", e.bundle("tick", ticker...))

	t.Run("stats", func(t *testing.T) {
		e := e.sub(t)
		var st runtime.Stats
		// The cgroup's CPU figure may read 0 right after the start.
		testutil.Eventually(t, "cpu usage", func() bool {
			decodeBody(t, e.mustStatus(nethttp.StatusOK, "GET", "/containers/talk/stats", ""), &st)
			return st.CPUUsageNanos > 0
		})
		if st.MemoryUsage == 0 || st.MemoryLimit == 0 || st.Pids == 0 {
			t.Errorf("stats %+v, want memory and pids", st)
		}
	})

	testutil.Eventually(t, "the init's stdout and stderr in the logs", func() bool {
		r := e.mustStatus(nethttp.StatusOK, "GET", "/containers/talk/logs", "")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("logs Content-Type %q", ct)
		}
		// Two pipes: the order between stdout and stderr is not kept, and on
		// a loaded machine "oops" may come after any number of "x".
		lines := strings.Split(string(r.body), "\n")
		return len(lines) > 3 && lines[0] != "x" && slices.Contains(lines, "hello") && slices.Contains(lines, "oops") &&
			slices.Contains(lines, "x")
	})

	e.run(t, []request{
		{"stats unknown", "GET", "/containers/nosuch/stats", "", 404, []string{"nosuch"}},
		{"stats bad id", "GET", "/containers/..x/stats", "", 400, []string{"container id"}},
		{"logs unknown", "GET", "/containers/nosuch/logs", "", 404, []string{"nosuch"}},
		{"logs bad id", "GET", "/containers/..x/logs", "", 400, []string{"container id"}},
		{"logs follow maybe", "GET", "/containers/talk/logs?follow=maybe", "", 400, []string{"maybe"}},
		{"logs tail negative", "GET", "/containers/talk/logs?tail=-1", "", 400, []string{"tail"}},
		{"logs since not a time", "GET", "/containers/talk/logs?since=yesterday", "", 400, []string{"since", "yesterday"}},
		{"logs timestamps maybe", "GET", "/containers/talk/logs?timestamps=maybe", "", 400, []string{"timestamps"}},
	})

	// follow=true sends what is there, then what comes, and ends when the
	// container stops.
	before := len(e.mustStatus(nethttp.StatusOK, "GET", "/containers/talk/logs", "").body)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp := e.send(ctx, "GET", "/containers/talk/logs?follow=true", "")
	defer resp.Body.Close()
	if resp.StatusCode != nethttp.StatusOK {
		t.Fatalf("follow: status %d", resp.StatusCode)
	}
	got := make(chan int, 1024)
	ended := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			got <- n
			if err != nil {
				ended <- err
				return
			}
		}
	}()
	total := 0
	for total <= before+100 { // 50 lines written after the request
		select {
		case n := <-got:
			total += n
		case err := <-ended:
			t.Fatalf("follow ended after %d bytes (%d before): %v", total, before, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("follow: %d bytes in 20 s, %d before the request", total, before)
		}
	}
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/talk", `{"signal": 9}`)
	if err := testutil.Receive(t, "follow to end when the container stopped", ended); err != io.EOF {
		t.Errorf("follow ended with %v, want the end of the body", err)
	}
	for len(got) > 0 {
		total += <-got
	}
	if after := len(e.mustStatus(nethttp.StatusOK, "GET", "/containers/talk/logs", "").body); total != after {
		t.Errorf("follow sent %d bytes, the log holds %d", total, after)
	}

	testutil.Eventually(t, "talk to stop", func() bool { return e.get("talk").State.Status == api.Stopped })
	want(t, "stats of stopped", e.do("GET", "/containers/talk/stats", ""), 409, "talk")
	// The logs of a stopped container stay until it is deleted.
	if r := e.mustStatus(nethttp.StatusOK, "GET", "/containers/talk/logs?follow=true", ""); !strings.HasPrefix(string(r.body), "hello\n") {
		t.Errorf("logs of stopped talk: %q", r.body[:min(len(r.body), 40)])
	}
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/talk", "")
	want(t, "logs of deleted", e.do("GET", "/containers/talk/logs", ""), 404, "talk")
}

// eventStream reads GET /events as NDJSON.
type eventStream struct {
	t     *testing.T
	items chan streamItem
}

// streamItem is one line of the stream, decoded or not.
type streamItem struct {
	ev   api.Event
	line string
	err  error
}

func (e *env) events(query string) *eventStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	resp := e.send(ctx, "GET", "/events"+query, "")
	if resp.StatusCode != nethttp.StatusOK {
		resp.Body.Close()
		e.t.Fatalf("GET /events%s: status %d", query, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		e.t.Errorf("GET /events: Content-Type %q, want application/x-ndjson", ct)
	}
	s := &eventStream{t: e.t, items: make(chan streamItem, 1024)}
	// The reader reports to the test through the channel only: it may
	// outlive the test by a moment.
	go func() {
		defer close(s.items)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if len(strings.TrimSpace(sc.Text())) == 0 {
				continue // keep-alive
			}
			var it streamItem
			it.line = sc.Text()
			it.err = json.Unmarshal(sc.Bytes(), &it.ev)
			s.items <- it
		}
	}()
	return s
}

// next returns the next event, failing after 20 s.
func (s *eventStream) next() api.Event {
	s.t.Helper()
	select {
	case it, ok := <-s.items:
		if !ok {
			s.t.Fatal("event stream ended")
		}
		if it.err != nil {
			s.t.Fatalf("event line %q: %v", it.line, it.err)
		}
		return it.ev
	case <-time.After(20 * time.Second):
		s.t.Fatal("no event within 20 s")
	}
	return api.Event{}
}

// expect reads one event per type and checks their order and ids.
func (s *eventStream) expect(container string, types ...api.EventType) []api.Event {
	s.t.Helper()
	var got []api.Event
	for _, typ := range types {
		ev := s.next()
		if ev.Type != typ || ev.Container != container {
			s.t.Fatalf("event %+v, want %s of %s (after %+v)", ev, typ, container, got)
		}
		if len(got) > 0 && ev.ID <= got[len(got)-1].ID {
			s.t.Errorf("event id %d after %d", ev.ID, got[len(got)-1].ID)
		}
		got = append(got, ev)
	}
	return got
}

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sleep := e.bundle("sleep", "sleep", "300")
	e.startContainer("other", sleep)

	stream := e.events("?container=ev")
	all := e.events("")

	// A life: start, an exec that is killed, pause, resume, the init
	// killed, delete.
	c := e.startContainer("ev", sleep)
	pid := e.exec("ev", "sleep", "200")
	e.mustStatus(nethttp.StatusNoContent, "POST", fmt.Sprintf("/containers/ev/process/%d", pid), `{"signal": 9}`)
	got := stream.expect("ev", api.EventStart, api.EventExec, api.EventProcessExit)
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/ev", `{"status": "paused"}`)
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/ev", `{"status": "running"}`)
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/ev", `{"signal": 9}`)
	got = append(got, stream.expect("ev", api.EventPause, api.EventResume, api.EventExit)...)
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/ev", "")
	got = append(got, stream.expect("ev", api.EventDelete)...)
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Errorf("ids do not increase: %d then %d", got[i-1].ID, got[i].ID)
		}
	}
	init := c.Processes[0].Pid
	for _, ev := range got {
		wantPid := map[api.EventType]int{api.EventStart: init, api.EventExit: init, api.EventExec: pid, api.EventProcessExit: pid}[ev.Type]
		if wantPid != 0 && ev.Pid != wantPid {
			t.Errorf("%s event has pid %d, want %d", ev.Type, ev.Pid, wantPid)
		}
		if (ev.Type == api.EventExit || ev.Type == api.EventProcessExit) && (ev.ExitStatus == nil || *ev.ExitStatus != 137) {
			t.Errorf("%s event: exit status %v, want 137", ev.Type, ev.ExitStatus)
		}
		if ev.Time.IsZero() {
			t.Errorf("%s event has no time", ev.Type)
		}
	}

	t.Run("unfiltered", func(t *testing.T) {
		// The same events, in the same order, and nothing of "other" since
		// it did nothing after the stream began.
		all.t = t
		all.expect("ev", api.EventStart, api.EventExec, api.EventProcessExit, api.EventPause, api.EventResume, api.EventExit, api.EventDelete)
	})

	t.Run("replay", func(t *testing.T) {
		s := e.sub(t).events(fmt.Sprintf("?container=ev&since=%d", got[0].ID))
		replayed := s.expect("ev", api.EventExec, api.EventProcessExit, api.EventPause, api.EventResume, api.EventExit, api.EventDelete)
		for i, ev := range replayed {
			if ev.ID != got[i+1].ID {
				t.Errorf("replayed %s with id %d, it was %d", ev.Type, ev.ID, got[i+1].ID)
			}
		}
		// The whole log: other's start first.
		s = e.sub(t).events("?since=0")
		s.expect("other", api.EventStart)
		s.expect("ev", api.EventStart, api.EventExec)
	})

	t.Run("sse", func(t *testing.T) {
		e := e.sub(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp := e.send(ctx, "GET", "/events?container=ev&since=0", "", "Accept", "text/event-stream")
		defer resp.Body.Close()
		if resp.StatusCode != nethttp.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		rd := bufio.NewReader(resp.Body)
		for i, want := range got {
			var frame []string
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					t.Fatalf("frame %d: %v after %q", i, err, frame)
				}
				if line == "\n" {
					break
				}
				frame = append(frame, strings.TrimSuffix(line, "\n"))
			}
			if len(frame) != 3 || frame[0] != "id: "+strconv.FormatUint(want.ID, 10) || frame[1] != "event: "+string(want.Type) || !strings.HasPrefix(frame[2], "data: ") {
				t.Fatalf("frame %d is %q, want id, event and data of %+v", i, frame, want)
			}
			var ev api.Event
			if err := json.Unmarshal([]byte(strings.TrimPrefix(frame[2], "data: ")), &ev); err != nil || ev.ID != want.ID || ev.Type != want.Type {
				t.Errorf("frame %d data %q: %+v, %v", i, frame[2], ev, err)
			}
		}
	})

	e.run(t, []request{
		{"since abc", "GET", "/events?since=abc", "", 400, []string{"abc"}},
		{"since negative", "GET", "/events?since=-1", "", 400, []string{"-1"}},
		{"bad container", "GET", "/events?container=..x", "", 400, []string{"container id"}},
	})
}
