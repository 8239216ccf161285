package finetune

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/embtune/embtune/trainer"
)

// FormatTable writes one row per metric (the union of the keys of the
// columns, in IRMetrics.Keys order) and one column per name in columns,
// taking values from rows[column]. A column named "delta" that rows does not
// hold is derived as the column before it minus the first column, e.g.
//
//	FormatTable(os.Stdout, []string{"base", "tuned", "delta"}, map[string]trainer.IRMetrics{"base": b, "tuned": t})
//
// Values print with 4 decimals (deltas signed), right-aligned; a missing
// value prints "-".
func FormatTable(w io.Writer, columns []string, rows map[string]trainer.IRMetrics) error {
	cols := make([]trainer.IRMetrics, len(columns))
	union := trainer.IRMetrics{}
	for c, name := range columns {
		m, ok := rows[name]
		if !ok && name == "delta" && c >= 2 {
			if a, b := cols[0], cols[c-1]; a != nil && b != nil {
				m = b.Sub(a)
			}
		}
		cols[c] = m
		for k := range m {
			union[k] = 0
		}
	}
	keys := union.Keys()

	// tabwriter aligns every column the same way: right, for the values.
	// The metric names stay left-aligned by padding them to the longest
	// name, and the two spaces between columns are part of each value cell
	// (tabwriter's padding would also go before the names).
	nameWidth := utf8.RuneCountInString("metric")
	for _, k := range keys {
		nameWidth = max(nameWidth, utf8.RuneCountInString(k))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 0, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t", nameWidth, "metric")
	for _, name := range columns {
		fmt.Fprintf(tw, "  %s\t", name)
	}
	fmt.Fprintln(tw)
	for _, key := range keys {
		fmt.Fprintf(tw, "%-*s\t", nameWidth, key)
		for c, m := range cols {
			fmt.Fprintf(tw, "  %s\t", tableCell(m, key, columns[c] == "delta"))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// tableCell is m[key] with 4 decimals, signed for a delta, or "-" when m
// has no key.
func tableCell(m trainer.IRMetrics, key string, delta bool) string {
	v, ok := m[key]
	switch {
	case !ok:
		return "-"
	case delta:
		return fmt.Sprintf("%+.4f", v)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}
