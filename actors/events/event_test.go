package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/troupe-run/troupe/actors/events"
)

func TestEventJSON(t *testing.T) {
	zero, one := 0, 1
	at := time.Date(2025, 11, 29, 10, 39, 0, 0, time.UTC)
	tests := []struct {
		name  string
		event events.Event
		want  string
	}{
		{
			name:  "start",
			event: events.Event{ID: 42, Type: events.Start, Container: "redis", Pid: 123, Time: at},
			want:  `{"id":42,"type":"start","container":"redis","pid":123,"time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "exit status 0 is sent",
			event: events.Event{ID: 43, Type: events.Exit, Container: "redis", Pid: 123, ExitStatus: &zero, Time: at},
			want:  `{"id":43,"type":"exit","container":"redis","pid":123,"exitStatus":0,"time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "process exit",
			event: events.Event{ID: 44, Type: events.ProcessExit, Container: "redis", Pid: 200, ExitStatus: &one, Time: at},
			want:  `{"id":44,"type":"process-exit","container":"redis","pid":200,"exitStatus":1,"time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "oom",
			event: events.Event{ID: 45, Type: events.OOM, Container: "redis", Time: at},
			want:  `{"id":45,"type":"oom","container":"redis","time":"2025-11-29T10:39:00Z"}`,
		},
		{
			name:  "gap",
			event: events.Event{ID: 20, Type: events.Gap, From: 9, Missed: 12, Time: at},
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
		typ  events.Type
		want string
	}{
		{events.Start, "start"},
		{events.Exit, "exit"},
		{events.Exec, "exec"},
		{events.ProcessExit, "process-exit"},
		{events.Pause, "pause"},
		{events.Resume, "resume"},
		{events.Checkpoint, "checkpoint"},
		{events.Restore, "restore"},
		{events.OOM, "oom"},
		{events.Delete, "delete"},
		{events.Gap, "gap"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if string(tt.typ) != tt.want {
				t.Errorf("got %q, want %q", tt.typ, tt.want)
			}
		})
	}
}
