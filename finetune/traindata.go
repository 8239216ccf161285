package finetune

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/embtune/embtune/dataset"
)

// Which pairs of Job.TrainPath train a fold (Job.TrainScope).
const (
	// TrainScopeAll trains every fold on all of TrainPath: every document
	// is available, only the human questions are held out (the realistic
	// case for pairs generated from a corpus).
	TrainScopeAll = "all"
	// TrainScopeFold trains a fold only on the pairs whose positive is not
	// a held-out pair's positive nor a part of one (a chunk cut from it):
	// the held-out documents are unseen as well.
	TrainScopeFold = "fold"
)

// foldTrain picks the training pairs of a fold whose held-out pairs are
// test from train (Job.TrainPath's pairs) under scope, and fails when a
// held-out question is also a training question: the evaluation would
// measure memory, not retrieval. dropped counts the pairs the fold scope
// left out.
func foldTrain(train, test []dataset.Pair, scope string) (picked []dataset.Pair, dropped int, err error) {
	switch scope {
	case TrainScopeAll:
		picked = train
	case TrainScopeFold:
		picked = make([]dataset.Pair, 0, len(train))
		for _, p := range train {
			if fromHeldOut(p.Positive, test) {
				dropped++
				continue
			}
			picked = append(picked, p)
		}
	default:
		return nil, 0, fmt.Errorf("train data scope: want %s or %s, got %q", TrainScopeAll, TrainScopeFold, scope)
	}
	if err := checkNoHeldOutAnchors(picked, test); err != nil {
		return nil, 0, err
	}
	return picked, dropped, nil
}

// fromHeldOut reports whether positive is a held-out pair's positive or a
// chunk of one (the chunker's chunks are spans of the document's text).
func fromHeldOut(positive string, test []dataset.Pair) bool {
	p := strings.TrimSpace(positive)
	if p == "" {
		return false
	}
	for _, t := range test {
		if strings.Contains(t.Positive, p) {
			return true
		}
	}
	return false
}

// checkNoHeldOutAnchors errors when a training anchor is a held-out
// question, up to case, spacing and punctuation.
func checkNoHeldOutAnchors(train, test []dataset.Pair) error {
	held := make(map[string]bool, len(test))
	for _, t := range test {
		held[questionKey(t.Anchor)] = true
	}
	var leaked []string
	for _, p := range train {
		if held[questionKey(p.Anchor)] {
			leaked = append(leaked, p.Anchor)
		}
	}
	if len(leaked) > 0 {
		return fmt.Errorf("%d training pair(s) ask a held-out question, e.g. %q: the held-out questions must not be in the training data",
			len(leaked), truncate(leaked[0], 80))
	}
	return nil
}

// questionKey is a question lower-cased with only its letters and digits,
// each run of other characters one space.
func questionKey(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			space = false
			continue
		}
		space = true
	}
	return b.String()
}
