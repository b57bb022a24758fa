package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/troupe-run/troupe/api"
)

// eventTimeLayout is RFC 3339 with microseconds, fixed width so that event
// lines align.
const eventTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// table writes rows aligned in columns, the first row the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for _, r := range rows {
		if _, err := fmt.Fprintln(tw, strings.Join(r, "\t")); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// writeContainers writes the table of `troupe ps`.
func writeContainers(w io.Writer, cs []*api.Container) error {
	rows := [][]string{{"ID", "STATUS", "PIDS", "INIT-PID", "BUNDLE"}}
	for _, c := range cs {
		initPid := "-"
		if len(c.Processes) > 0 {
			initPid = strconv.Itoa(c.Processes[0].Pid)
		}
		rows = append(rows, []string{c.ID, statusText(c.State), strconv.Itoa(len(c.Processes)), initPid, c.BundlePath})
	}
	return table(w, rows)
}

// statusText is the status, with the exit status of a stopped container:
// "stopped (137)".
func statusText(s api.ContainerState) string {
	if s.ExitStatus != nil {
		return fmt.Sprintf("%s (%d)", s.Status, *s.ExitStatus)
	}
	return string(s.Status)
}

// machineText is the machine line of `troupe state`.
func machineText(m api.Machine) string {
	return fmt.Sprintf("machine: %d CPUs, %s memory", m.CPUs, formatBytes(m.Memory))
}

// writeProcesses writes the table of `troupe top`.
func writeProcesses(w io.Writer, ps []api.Process) error {
	rows := [][]string{{"PID", "USER", "ARGS"}}
	for _, p := range ps {
		rows = append(rows, []string{strconv.Itoa(p.Pid), fmt.Sprintf("%d:%d", p.User.UID, p.User.GID), strings.Join(p.Args, " ")})
	}
	return table(w, rows)
}

// writeCheckpoints writes the table of `troupe checkpoint ls`.
func writeCheckpoints(w io.Writer, cps []api.Checkpoint) error {
	rows := [][]string{{"NAME", "CREATED", "TCP", "UNIX-SOCKETS", "SHELL"}}
	for _, cp := range cps {
		created := "-"
		if !cp.Created.IsZero() {
			created = cp.Created.Format(time.RFC3339)
		}
		rows = append(rows, []string{cp.Name, created, strconv.FormatBool(cp.TCP), strconv.FormatBool(cp.UnixSockets), strconv.FormatBool(cp.Shell)})
	}
	return table(w, rows)
}

// writeStats writes the figures of `troupe stats`, one per line.
func writeStats(w io.Writer, s api.Stats) error {
	pidsLimit := "unlimited"
	if s.PidsLimit > 0 {
		pidsLimit = strconv.FormatUint(s.PidsLimit, 10)
	}
	return table(w, [][]string{
		{"CPU TIME", time.Duration(min(s.CPUUsageNanos, math.MaxInt64)).String()},
		{"MEMORY", fmt.Sprintf("%s / %s (peak %s)", formatBytes(s.MemoryUsage), formatBytes(s.MemoryLimit), formatBytes(s.MemoryMaxUsage))},
		{"OOM KILLS", strconv.FormatUint(s.OOMKills, 10)},
		{"PIDS", fmt.Sprintf("%d / %s", s.Pids, pidsLimit)},
		{"BLOCK I/O", fmt.Sprintf("read %s, write %s", formatBytes(s.IOReadBytes), formatBytes(s.IOWriteBytes))},
	})
}

// formatEvent is one line of `troupe events`:
// TIME ID TYPE CONTAINER [pid=N] [exit=N] [from=N missed=N], the time in loc.
func formatEvent(ev api.Event, loc *time.Location) string {
	container := ev.Container
	if container == "" {
		container = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s %s", ev.Time.In(loc).Format(eventTimeLayout), ev.ID, ev.Type, container)
	if ev.Pid != 0 {
		fmt.Fprintf(&b, " pid=%d", ev.Pid)
	}
	if ev.ExitStatus != nil {
		fmt.Fprintf(&b, " exit=%d", *ev.ExitStatus)
	}
	if ev.Type == api.EventGap {
		fmt.Fprintf(&b, " from=%d missed=%d", ev.From, ev.Missed)
	}
	return b.String()
}

// formatBytes writes n in binary units with at most one decimal: "512 B",
// "64 MiB", "7.3 GiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	v = math.Round(v*10) / 10
	if v >= unit && i < 5 { // 1023.96 KiB rounds to 1024 KiB: say 1 MiB
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + string("KMGTPE"[i]) + "iB"
}
