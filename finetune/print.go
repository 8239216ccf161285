package finetune

import (
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/embtune/embtune/trainer"
)

// PrintReport prints the before/after table and the chosen pairs.
func PrintReport(w io.Writer, rep Report) {
	if rep.Base != nil && rep.Tuned != nil {
		delta := trainer.IRMetrics{}
		for k, v := range rep.Tuned {
			delta[k] = v - rep.Base[k]
		}
		rows := map[string]trainer.IRMetrics{"base": rep.Base, "tuned": rep.Tuned, "delta": delta}
		cols := []string{"base", "tuned", "delta"}
		if rep.BaseStd != nil {
			rows["base±"] = rep.BaseStd
			rows["tuned±"] = rep.TunedStd
			cols = []string{"base", "base±", "tuned", "tuned±", "delta"}
		}
		FormatTable(w, cols, rows)
		printComparison(w, rep)
	}
	printDimTable(w, rep.Matryoshka)
	for _, f := range rep.Folds {
		if f.Validation != nil {
			fmt.Fprintf(w, "fold %d validation: %s\n", f.Fold, f.Validation.Summary())
		}
	}
	if v := rep.Training.Validation; v != nil {
		v.PrintCurve(w)
		fmt.Fprintf(w, "exported model: %s\n", v.Summary())
	}
	for _, p := range rep.Pairs {
		fmt.Fprintf(w, "cosine %.4f -> %.4f  %q\n", p.Base, p.Tuned, truncate(p.Query, 70))
	}
	keys := make([]string, 0, len(rep.Output))
	for k := range rep.Output {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%-12s %s\n", k, rep.Output[k])
	}
}

// printDimTable prints NDCG@10 at each matryoshka dim with the
// storage per vector.
func printDimTable(w io.Writer, dims []DimMetrics) {
	if len(dims) == 0 {
		return
	}
	fmt.Fprintf(w, "%-5s %6s %7s %8s %8s %8s %8s %8s\n", "dim", "bytes", "smaller",
		"base", "tuned", "delta", "base±", "tuned±")
	for _, d := range dims {
		fmt.Fprintf(w, "%-5d %6d %6.1fx %8.4f %8.4f %+8.4f %8s %8s\n", d.Dim, d.BytesPerVector, d.Smaller,
			d.Base["ndcg@10"], d.Tuned["ndcg@10"], d.Tuned["ndcg@10"]-d.Base["ndcg@10"],
			stdCell(d.BaseStd), stdCell(d.TunedStd))
	}
	fmt.Fprintln(w, "(ndcg@10 at each matryoshka dim: vectors cut to dim, re-normalised)")
}

func stdCell(m trainer.IRMetrics) string {
	v, ok := m["ndcg@10"]
	if !ok || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4f", v)
}

// truncate cuts s to n runes, the last one an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
