package trainer

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressBar draws a one-line bar with loss, lr and pairs/s. On a terminal
// it redraws in place; otherwise it stays silent, since the step log lines
// already say the same thing in a form log scrapers read.
type progressBar struct {
	w       io.Writer
	total   int
	last    time.Time
	started bool
}

func newProgressBar(w io.Writer, total int) *progressBar {
	if w == nil || !isTerminal(w) {
		return &progressBar{}
	}
	return &progressBar{w: w, total: total}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// A character device is not enough: /dev/null is one too. term asks
	// the terminal driver (TCGETS), which only a tty answers.
	return term.IsTerminal(int(f.Fd()))
}

func (p *progressBar) update(step int, loss, lr, pairsPerSec float64) {
	if p.w == nil || (time.Since(p.last) < 200*time.Millisecond && step < p.total) {
		return
	}
	p.last = time.Now()
	p.started = true
	const width = 30
	filled := width * step / max(1, p.total)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d loss %.4f lr %.2e %.1f pairs/s ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), step, p.total, loss, lr, pairsPerSec)
}

func (p *progressBar) finish() {
	if p.w != nil && p.started {
		fmt.Fprintln(p.w)
		p.started = false
	}
}
