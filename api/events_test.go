package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
)

func TestEventJSON(t *testing.T) {
	zero, one := 0, 1
	at := time.Date(2025, 11, 29, 10, 39, 0, 0, time.UTC)
	tests := []struct {
		name  string
		event api.Event
		want  string
	}{
		{
			name:  "start",
			event: api.Event{ID: 42, Type: api.EventStart, Container: "redis", Pid: 123, Time: at},
			want:  `{"id":42,"type":"start","container":"redis","pid":123,"time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "exit status 0 is sent",
			event: api.Event{ID: 43, Type: api.EventExit, Container: "redis", Pid: 123, ExitStatus: &zero, Time: at},
			want:  `{"id":43,"type":"exit","container":"redis","pid":123,"exitStatus":0,"time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "process exit",
			event: api.Event{ID: 44, Type: api.EventProcessExit, Container: "redis", Pid: 200, ExitStatus: &one, Time: at},
			want:  `{"id":44,"type":"process-exit","container":"redis","pid":200,"exitStatus":1,"time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "oom",
			event: api.Event{ID: 45, Type: api.EventOOM, Container: "redis", Time: at},
			want:  `{"id":45,"type":"oom","container":"redis","time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "gap",
			event: api.Event{ID: 20, Type: api.EventGap, From: 9, Missed: 12, Time: at},
			want:  `{"id":20,"type":"gap","time":"2025-11-29T10:39:00Z","from":9,"missed":12}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.event)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTypeStrings(t *testing.T) {
	// The strings are the API contract of GET /events.
	tests := []struct {
		typ  api.EventType
		want string
	}{
		{api.EventStart, "start"},
		{api.EventExit, "exit"},
		{api.EventExec, "exec"},
		{api.EventProcessExit, "process-exit"},
		{api.EventPause, "pause"},
		{api.EventResume, "resume"},
		{api.EventCheckpoint, "checkpoint"},
		{api.EventRestore, "restore"},
		{api.EventOOM, "oom"},
		{api.EventDelete, "delete"},
		{api.EventGap, "gap"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if string(tt.typ) != tt.want {
				t.Errorf("got %q, want %q", tt.typ, tt.want)
			}
		})
	}
}
