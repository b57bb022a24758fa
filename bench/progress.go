package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// progressInterval is how often the bar is redrawn: ten times a second is
// smooth to the eye and costs nothing next to a thousand starts.
const progressInterval = 100 * time.Millisecond

// barWidth is the number of cells between the brackets.
const barWidth = 30

// progressBar draws `name [=====>    ] 512/1000  fail 0  134/s` on one
// terminal line. Its zero value (no writer) draws nothing, so the run loop
// does not care whether there is a terminal.
type progressBar struct {
	w     io.Writer
	name  string
	total int
}

// newProgressBar returns a bar on w if w is a terminal, else one that draws
// nothing: a bar's carriage returns would litter a file or a pipe.
func newProgressBar(w io.Writer, name string, total int) *progressBar {
	if !isTerminalWriter(w) {
		w = nil
	}
	return &progressBar{w: w, name: name, total: total}
}

// isTerminal reports whether w is an *os.File on a terminal: one that has a
// window size.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil
}

// run redraws the bar until stop closes, then draws it a last time and ends
// the line. counts returns the starts finished and failed so far.
func (b *progressBar) run(stop <-chan struct{}, t0 time.Time, counts func() (done, failed int)) {
	if b.w == nil {
		<-stop
		return
	}
	draw := func() {
		done, failed := counts()
		fmt.Fprint(b.w, progressLine(b.name, done, b.total, failed, time.Since(t0)))
	}
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			draw()
		case <-stop:
			draw()
			fmt.Fprintln(b.w)
			return
		}
	}
}

// progressLine is one drawing of the bar: a carriage return, the bar, and
// an erase to the end of the line, as the line may have been longer before.
func progressLine(name string, done, total, failed int, elapsed time.Duration) string {
	filled := 0
	if total > 0 {
		filled = min(done*barWidth/total, barWidth)
	}
	cells := strings.Repeat("=", filled)
	if filled < barWidth {
		cells += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	return fmt.Sprintf("\r%s [%s] %d/%d  fail %d  %.0f/s\x1b[K", name, cells, done, total, failed, rate)
}
