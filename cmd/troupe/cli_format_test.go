package main

import (
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
)

func intPtr(v int) *int { return &v }

// lines joins lines with a newline after each, for expected output.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestWriteContainers(t *testing.T) {
	tests := []struct {
		name string
		cs   []*api.Container
		want string
	}{
		{"none", nil, lines("ID   STATUS   PIDS   INIT-PID   BUNDLE")},
		{
			name: "running and stopped",
			cs: []*api.Container{
				{ID: "redis", BundlePath: "/containers/redis", State: api.ContainerState{Status: api.Running},
					Processes: []api.Process{{Pid: 11497}, {Pid: 12}}},
				{ID: "web-1", BundlePath: "/b", State: api.ContainerState{Status: api.Stopped, ExitStatus: intPtr(137)}},
			},
			want: lines(
				"ID      STATUS          PIDS   INIT-PID   BUNDLE",
				"redis   running         2      11497      /containers/redis",
				"web-1   stopped (137)   0      -          /b",
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeContainers(&b, tt.cs); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestWriteProcesses(t *testing.T) {
	var b strings.Builder
	err := writeProcesses(&b, []api.Process{
		{Pid: 11497, Args: []string{"redis-server", "--bind", "0.0.0.0"}, User: api.User{UID: 1000, GID: 1000}},
		{Pid: 12, Args: []string{"sh"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := lines(
		"PID     USER        ARGS",
		"11497   1000:1000   redis-server --bind 0.0.0.0",
		"12      0:0         sh",
	)
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteCheckpoints(t *testing.T) {
	var b strings.Builder
	err := writeCheckpoints(&b, []api.Checkpoint{
		{Name: "cp1", TCP: true, Created: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)},
		{Name: "cp2", Shell: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := lines(
		"NAME   CREATED                TCP     UNIX-SOCKETS   SHELL",
		"cp1    2026-11-29T10:00:00Z   true    false          false",
		"cp2    -                      false   false          true",
	)
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteStats(t *testing.T) {
	tests := []struct {
		name string
		s    api.Stats
		want string
	}{
		{
			name: "limited",
			s: api.Stats{CPUUsageNanos: 1_500_000_000, MemoryUsage: 12 << 20, MemoryLimit: 64 << 20, MemoryMaxUsage: 13 << 20,
				OOMKills: 1, Pids: 3, PidsLimit: 100, IOReadBytes: 0, IOWriteBytes: 4096},
			want: lines(
				"CPU TIME    1.5s",
				"MEMORY      12 MiB / 64 MiB (peak 13 MiB)",
				"OOM KILLS   1",
				"PIDS        3 / 100",
				"BLOCK I/O   read 0 B, write 4 KiB",
			),
		},
		{
			name: "no pids limit",
			s:    api.Stats{MemoryLimit: 7872909312, Pids: 1},
			want: lines(
				"CPU TIME    0s",
				"MEMORY      0 B / 7.3 GiB (peak 0 B)",
				"OOM KILLS   0",
				"PIDS        1 / unlimited",
				"BLOCK I/O   read 0 B, write 0 B",
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeStats(&b, tt.s); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestFormatEvent(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 1, 123456789, time.UTC)
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		ev   api.Event
		loc  *time.Location
		want string
	}{
		{"start", api.Event{ID: 1, Type: api.EventStart, Container: "redis", Pid: 11497, Time: at}, time.UTC,
			"2026-11-29T10:00:01.123456Z 1 start redis pid=11497"},
		{"exit 0", api.Event{ID: 4, Type: api.EventExit, Container: "redis", Pid: 11497, ExitStatus: intPtr(0), Time: at}, time.UTC,
			"2026-11-29T10:00:01.123456Z 4 exit redis pid=11497 exit=0"},
		{"pause", api.Event{ID: 5, Type: api.EventPause, Container: "redis", Time: at}, paris,
			"2026-11-29T11:00:01.123456+01:00 5 pause redis"},
		{"gap", api.Event{ID: 9, Type: api.EventGap, From: 6, Missed: 4, Time: at}, time.UTC,
			"2026-11-29T10:00:01.123456Z 9 gap - from=6 missed=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatEvent(tt.ev, tt.loc); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{64 << 20, "64 MiB"},
		{1<<20 - 1, "1 MiB"},
		{7872909312, "7.3 GiB"},
		{1 << 60, "1 EiB"},
		{^uint64(0), "16 EiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestMachineText(t *testing.T) {
	if got, want := machineText(api.Machine{CPUs: 2, Memory: 7872909312}), "machine: 2 CPUs, 7.3 GiB memory"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
