package finetune

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/trainer"
)

// writeLossCurve writes the step history as loss.csv, the validation
// scores (when there are any) as validation.csv, and loss.svg: a plot of
// the training loss per step above the validation metric per evaluation.
func writeLossCurve(dir string, history []trainer.StepLog, val *trainer.ValidationReport) error {
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
	if val != nil {
		err := atomicfile.Write(filepath.Join(dir, "validation.csv"), func(w io.Writer) error {
			if _, err := fmt.Fprintf(w, "step,epoch,%s\n", val.Metric); err != nil {
				return err
			}
			for _, e := range val.Evaluations {
				if _, err := fmt.Fprintf(w, "%d,%.4f,%.6f\n", e.Step, e.Epoch, e.Metrics[val.Metric]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(dir, "loss.svg"), func(w io.Writer) error {
		return lossPlot(w, history, val)
	})
}

var (
	lossColor  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	valColor   = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	baseColor  = color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
	bestColor  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	plotWidth  = 18 * vg.Centimeter
	panelHight = 8 * vg.Centimeter
)

// lossPlot draws the training loss against the step and, below it, the
// validation metric of each evaluation against the same steps, with the
// base model's score as a dashed line and the best evaluation marked.
func lossPlot(w io.Writer, history []trainer.StepLog, val *trainer.ValidationReport) error {
	loss := plot.New()
	loss.Title.Text = "training loss (MultipleNegativesRankingLoss)"
	loss.X.Label.Text = "step"
	loss.Y.Label.Text = "loss"
	loss.Add(plotter.NewGrid())
	xys := make(plotter.XYs, len(history))
	for i, h := range history {
		xys[i] = plotter.XY{X: float64(h.Step), Y: h.Loss}
	}
	if len(xys) > 0 {
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("loss plot: %w", err)
		}
		l.Color = lossColor
		l.Width = vg.Points(1.5)
		loss.Add(l)
		loss.Legend.Add("training loss per step", l)
	}
	loss.Legend.Top = true
	// Headroom above the curve for the legend.
	loss.Y.Min = min(loss.Y.Min, 0)
	loss.Y.Max += 0.15 * (loss.Y.Max - loss.Y.Min)
	panels := [][]*plot.Plot{{loss}}
	if val != nil && len(val.Evaluations) > 0 {
		vp, err := validationPlot(val)
		if err != nil {
			return err
		}
		vp.X.Min, vp.X.Max = min(vp.X.Min, loss.X.Min), max(vp.X.Max, loss.X.Max)
		loss.X.Min, loss.X.Max = vp.X.Min, vp.X.Max
		panels = append(panels, []*plot.Plot{vp})
	}
	c := vgsvg.New(plotWidth, panelHight*vg.Length(len(panels)))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(panels, tiles, dc)
	for i, row := range panels {
		row[0].Draw(canvases[i][0])
	}
	_, err := c.WriteTo(w)
	return err
}

func validationPlot(val *trainer.ValidationReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "validation " + val.Metric + " per evaluation (step 0: the base model)"
	p.X.Label.Text = "step"
	p.Y.Label.Text = val.Metric
	p.Add(plotter.NewGrid())
	xys := make(plotter.XYs, len(val.Evaluations))
	for i, e := range val.Evaluations {
		xys[i] = plotter.XY{X: float64(e.Step), Y: e.Metrics[val.Metric]}
	}
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, fmt.Errorf("validation plot: %w", err)
	}
	l.Color, pts.Color = valColor, valColor
	pts.Shape = draw.CircleGlyph{}
	p.Add(l, pts)
	p.Legend.Add("validation "+val.Metric, l, pts)
	last := float64(val.Evaluations[len(val.Evaluations)-1].Step)
	base, err := plotter.NewLine(plotter.XYs{{X: 0, Y: val.BaseScore}, {X: max(last, 1), Y: val.BaseScore}})
	if err != nil {
		return nil, fmt.Errorf("validation plot: %w", err)
	}
	base.Color, base.Dashes = baseColor, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(base)
	p.Legend.Add(fmt.Sprintf("base model %.4f", val.BaseScore), base)
	best, err := plotter.NewScatter(plotter.XYs{{X: float64(val.BestStep), Y: val.BestScore}})
	if err != nil {
		return nil, fmt.Errorf("validation plot: %w", err)
	}
	best.Color, best.Shape, best.Radius = bestColor, draw.RingGlyph{}, vg.Points(6)
	p.Add(best)
	label := fmt.Sprintf("best: step %d, %.4f", val.BestStep, val.BestScore)
	if val.BaseWon {
		label = "best: the base model"
	}
	p.Legend.Add(label, best)
	if len(val.AlphaScores) > 0 || val.Alpha != 1 {
		// α without trailing zeros, as ValidationReport.Summary prints it.
		p.Legend.Add(fmt.Sprintf("output: WiSE-FT α %s, %.4f", strconv.FormatFloat(val.Alpha, 'f', -1, 64), val.Score))
	}
	p.Legend.Top = false
	p.Legend.Left = false
	// Room below the curve for the legend's four lines.
	p.Y.Min -= 0.8 * max(p.Y.Max-p.Y.Min, 0.01)
	return p, nil
}
