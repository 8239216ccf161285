package trainer

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/embtune/embtune/atomicfile"
)

// writeLossCurve writes the step history as loss.csv and a self-contained
// loss.svg (loss and learning rate against step) into dir.
func writeLossCurve(dir string, history []StepLog) error {
	err := atomicfile.Write(filepath.Join(dir, "loss.csv"), func(w io.Writer) error {
		if _, err := fmt.Fprintln(w, "step,epoch,loss,lr,grad_norm"); err != nil {
			return err
		}
		for _, h := range history {
			if _, err := fmt.Fprintf(w, "%d,%.4f,%.6f,%.6g,%.6f\n", h.Step, h.Epoch, h.Loss, h.LR, h.GradNorm); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "loss.svg"), func(w io.Writer) error {
		_, err := io.WriteString(w, lossSVG(history))
		return err
	})
}

func lossSVG(history []StepLog) string {
	const width, height, pad = 720.0, 360.0, 48.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	if len(history) == 0 {
		b.WriteString(`<text x="20" y="30">no steps</text></svg>` + "\n")
		return b.String()
	}
	maxLoss, maxLR := 0.0, 0.0
	for _, h := range history {
		maxLoss = math.Max(maxLoss, h.Loss)
		maxLR = math.Max(maxLR, h.LR)
	}
	maxLoss = math.Max(maxLoss, 1e-9)
	maxLR = math.Max(maxLR, 1e-12)
	n := float64(max(1, len(history)-1))
	x := func(i int) float64 { return pad + (width-2*pad)*float64(i)/n }
	y := func(v, top float64) float64 { return height - pad - (height-2*pad)*v/top }
	line := func(color string, val func(StepLog) float64, top float64) {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="`, color)
		for i, h := range history {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(val(h), top))
		}
		b.WriteString(`"/>` + "\n")
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", pad, height-pad, width-pad, height-pad)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", pad, pad, pad, height-pad)
	line("#1f77b4", func(h StepLog) float64 { return h.Loss }, maxLoss)
	line("#ff7f0e", func(h StepLog) float64 { return h.LR }, maxLR)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">loss (max %.4f)</text>`+"\n", pad+8, pad-16, maxLoss)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#ff7f0e">learning rate (max %.3g)</text>`+"\n", pad+200, pad-16, maxLR)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">step 1 … %d</text>`+"\n", width/2-40, height-pad+28, len(history))
	b.WriteString("</svg>\n")
	return b.String()
}
