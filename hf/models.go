package hf

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// parseModelJSON reads tokenizer.json's "model"; it returns the model and
// its vocabulary (token to id).
func parseModelJSON(raw json.RawMessage) (model, map[string]int64, error) {
	if isNull(raw) {
		return nil, nil, errors.New("missing model")
	}
	typ, err := typeOf(raw, "model")
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case "WordPiece":
		var m tjWordPiece
		if err := decodeComponent(raw, "model", typ, &m); err != nil {
			return nil, nil, err
		}
		wp, err := newWordPiece(&m)
		if err != nil {
			return nil, nil, err
		}
		return wordPieceModel{wp}, m.Vocab, nil
	case "BPE":
		var m tjBPE
		if err := decodeComponent(raw, "model", typ, &m); err != nil {
			return nil, nil, err
		}
		b, err := newBPE(&m)
		if err != nil {
			return nil, nil, fmt.Errorf("model BPE: %w", err)
		}
		return b, m.Vocab, nil
	case "Unigram":
		var m tjUnigram
		if err := decodeComponent(raw, "model", typ, &m); err != nil {
			return nil, nil, err
		}
		u, vocab, err := newUnigram(&m)
		if err != nil {
			return nil, nil, fmt.Errorf("model Unigram: %w", err)
		}
		return u, vocab, nil
	default:
		return nil, nil, fmt.Errorf("unsupported model type %q", typ)
	}
}

type wordPieceModel struct{ wp *wordPiece }

func (w wordPieceModel) appendIDs(ids []int64, word string) ([]int64, error) {
	return w.wp.appendWord(ids, []byte(word)), nil
}

type tjBPE struct {
	Dropout                 *float64         `json:"dropout"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
}

type idPair struct{ a, b int64 }

type mergeRule struct {
	rank  int
	newID int64
}

// bpe is HF's BPE model without dropout (dropout is refused at load: it
// makes tokenizing random).
type bpe struct {
	vocab        map[string]int64
	merges       map[idPair]mergeRule
	unkID        int64 // -1: no unk_token
	prefix       string
	suffix       string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteIDs      [256]int64 // <0xXX> ids, -1 where absent
}

func newBPE(m *tjBPE) (*bpe, error) {
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("dropout %g is not supported (it makes tokenizing random; set it to null)", *m.Dropout)
	}
	if m.Vocab == nil {
		return nil, errors.New("no vocab")
	}
	b := &bpe{vocab: m.Vocab, unkID: -1, fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges}
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("vocab: negative id %d for %q", id, tok)
		}
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocab", *m.UnkToken)
		}
		b.unkID = id
	}
	if m.ContinuingSubwordPrefix != nil {
		b.prefix = *m.ContinuingSubwordPrefix
	}
	if m.EndOfWordSuffix != nil {
		b.suffix = *m.EndOfWordSuffix
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := m.Vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
			b.byteIDs[i] = id
		}
	}
	pairs, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	b.merges = make(map[idPair]mergeRule, len(pairs))
	for rank, p := range pairs {
		a, ok := m.Vocab[p[0]]
		if !ok {
			return nil, fmt.Errorf("merges[%d] names %q, which is not in the vocab", rank, p[0])
		}
		c, ok := m.Vocab[p[1]]
		if !ok {
			return nil, fmt.Errorf("merges[%d] names %q, which is not in the vocab", rank, p[1])
		}
		if len(p[1]) < len(b.prefix) {
			return nil, fmt.Errorf("merges[%d]: %q is shorter than continuing_subword_prefix", rank, p[1])
		}
		joined := p[0] + p[1][len(b.prefix):]
		n, ok := m.Vocab[joined]
		if !ok {
			return nil, fmt.Errorf("merges[%d] makes %q, which is not in the vocab", rank, joined)
		}
		b.merges[idPair{a, c}] = mergeRule{rank: rank, newID: n}
	}
	return b, nil
}

// parseMerges reads merges as [["a","b"], ...] or the legacy ["a b", ...].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, errors.New("no merges")
	}
	var tuples [][2]string
	if err := json.Unmarshal(raw, &tuples); err == nil {
		return tuples, nil
	}
	var legacy []string
	if err := json.Unmarshal(raw, &legacy); err != nil {
		return nil, fmt.Errorf("merges are neither [[a, b], ...] nor [\"a b\", ...]: %w", err)
	}
	tuples = make([][2]string, len(legacy))
	for i, l := range legacy {
		parts := strings.Split(l, " ")
		if len(parts) != 2 {
			return nil, fmt.Errorf("merges[%d] %q is not two tokens separated by one space", i, l)
		}
		tuples[i] = [2]string{parts[0], parts[1]}
	}
	return tuples, nil
}

type bpeSymbol struct {
	id         int64
	prev, next int
	len        int // bytes; 0 once merged away
}

type bpeMerge struct {
	pos   int
	rank  int
	newID int64
}

type mergeQueue []bpeMerge

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(bpeMerge)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func (b *bpe) appendIDs(ids []int64, w string) ([]int64, error) {
	if w == "" {
		return ids, nil
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[w]; ok {
			return append(ids, id), nil
		}
	}
	// merge_word: one symbol per character.
	syms := make([]bpeSymbol, 0, len(w))
	addSym := func(id int64, n int) {
		syms = append(syms, bpeSymbol{id: id, prev: len(syms) - 1, next: len(syms) + 1, len: n})
	}
	unkID, unkLen := int64(-1), 0
	var sb strings.Builder
	for i := 0; i < len(w); {
		_, size := utf8.DecodeRuneInString(w[i:])
		s := w[i : i+size]
		if (i > 0 && b.prefix != "") || (i+size == len(w) && b.suffix != "") {
			sb.Reset()
			if i > 0 {
				sb.WriteString(b.prefix)
			}
			sb.WriteString(s)
			if i+size == len(w) {
				sb.WriteString(b.suffix)
			}
			s = sb.String()
		}
		i += size
		if id, ok := b.vocab[s]; ok {
			if unkID >= 0 {
				addSym(unkID, unkLen)
				unkID = -1
			}
			addSym(id, size)
			continue
		}
		if b.byteFallback {
			all := true
			for k := 0; k < len(s); k++ {
				if b.byteIDs[s[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				for k := 0; k < len(s); k++ {
					addSym(b.byteIDs[s[k]], 1)
				}
				continue
			}
		}
		if b.unkID >= 0 {
			switch {
			case unkID >= 0 && b.fuseUnk:
				unkLen += size
			case unkID >= 0:
				addSym(unkID, unkLen)
				unkID, unkLen = b.unkID, size
			default:
				unkID, unkLen = b.unkID, size
			}
		}
	}
	if unkID >= 0 {
		addSym(unkID, unkLen)
	}
	if len(syms) == 0 {
		return ids, nil
	}
	syms[len(syms)-1].next = -1
	// merge_all: lowest rank first, then leftmost.
	q := make(mergeQueue, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[idPair{syms[i].id, syms[i+1].id}]; ok {
			q = append(q, bpeMerge{pos: i, rank: m.rank, newID: m.newID})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(bpeMerge)
		cur := &syms[top.pos]
		if cur.len == 0 || cur.next == -1 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		if m, ok := b.merges[idPair{cur.id, right.id}]; !ok || m.newID != top.newID {
			continue
		}
		cur.id = top.newID
		cur.len += right.len
		cur.next = right.next
		syms[nextPos].len = 0
		if right.next >= 0 && right.next < len(syms) {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if m, ok := b.merges[idPair{syms[cur.prev].id, cur.id}]; ok {
				heap.Push(&q, bpeMerge{pos: cur.prev, rank: m.rank, newID: m.newID})
			}
		}
		if cur.next >= 0 && cur.next < len(syms) {
			if m, ok := b.merges[idPair{cur.id, syms[cur.next].id}]; ok {
				heap.Push(&q, bpeMerge{pos: top.pos, rank: m.rank, newID: m.newID})
			}
		}
	}
	for _, s := range syms {
		if s.len != 0 {
			ids = append(ids, s.id)
		}
	}
	return ids, nil
}

type tjUnigram struct {
	UnkID        *int64            `json:"unk_id"`
	Vocab        []json.RawMessage `json:"vocab"`
	ByteFallback bool              `json:"byte_fallback"`
}

// unigram is HF's Unigram model: Viterbi over the pieces' log
// probabilities, unknown characters fused into one unk.
type unigram struct {
	ids          map[string]int64
	scores       []float64
	unkID        int64 // -1: none
	unkScore     float64
	maxLen       int // longest piece, in bytes
	byteFallback bool
	byteIDs      [256]int64
}

// unkPenalty is K_UNK_PENALTY in HF's unigram model.
const unkPenalty = 10.0

func newUnigram(m *tjUnigram) (*unigram, map[string]int64, error) {
	if len(m.Vocab) == 0 {
		return nil, nil, errors.New("vocab is empty")
	}
	u := &unigram{ids: make(map[string]int64, len(m.Vocab)), scores: make([]float64, len(m.Vocab)), unkID: -1, byteFallback: m.ByteFallback}
	vocab := make(map[string]int64, len(m.Vocab))
	minScore := math.Inf(1)
	for i, raw := range m.Vocab {
		var entry []json.RawMessage
		if err := json.Unmarshal(raw, &entry); err != nil || len(entry) != 2 {
			return nil, nil, fmt.Errorf("vocab[%d] is not a [piece, score] pair (a Unigram vocab needs scores)", i)
		}
		var pieceStr string
		var score float64
		if err := json.Unmarshal(entry[0], &pieceStr); err != nil {
			return nil, nil, fmt.Errorf("vocab[%d]: piece: %w", i, err)
		}
		if err := json.Unmarshal(entry[1], &score); err != nil {
			return nil, nil, fmt.Errorf("vocab[%d]: score of %q: %w", i, pieceStr, err)
		}
		u.ids[pieceStr] = int64(i)
		vocab[pieceStr] = int64(i)
		u.scores[i] = score
		minScore = min(minScore, score)
		u.maxLen = max(u.maxLen, len(pieceStr))
	}
	if m.UnkID != nil {
		if *m.UnkID < 0 || *m.UnkID >= int64(len(m.Vocab)) {
			return nil, nil, fmt.Errorf("unk_id %d is outside the vocab", *m.UnkID)
		}
		u.unkID = *m.UnkID
	}
	u.unkScore = minScore - unkPenalty
	for i := range u.byteIDs {
		u.byteIDs[i] = -1
		if id, ok := u.ids[fmt.Sprintf("<0x%02X>", i)]; ok {
			u.byteIDs[i] = id
		}
	}
	return u, vocab, nil
}

type latticeNode struct {
	start int // -1: unreached
	id    int64
	score float64
}

func (u *unigram) appendIDs(ids []int64, s string) ([]int64, error) {
	if s == "" {
		return ids, nil
	}
	n := len(s)
	best := make([]latticeNode, n+1)
	for i := range best {
		best[i].start = -1
	}
	for start := 0; start < n; {
		base := best[start].score
		_, mblen := utf8.DecodeRuneInString(s[start:])
		single := false
		end := start
		for end < n && end-start < u.maxLen {
			_, size := utf8.DecodeRuneInString(s[end:])
			end += size
			if end-start > u.maxLen {
				break
			}
			id, ok := u.ids[s[start:end]]
			if !ok {
				continue
			}
			cand := base + u.scores[id]
			if t := &best[end]; t.start < 0 || cand > t.score {
				*t = latticeNode{start: start, id: id, score: cand}
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			if u.unkID < 0 {
				return nil, errors.New("unigram: a character is not in the vocab and the model has no unk_id")
			}
			cand := base + u.unkScore
			if t := &best[start+mblen]; t.start < 0 || cand > t.score {
				*t = latticeNode{start: start, id: u.unkID, score: cand}
			}
		}
		start += mblen
	}
	// Backtrack; consecutive unknowns fuse into one piece.
	var pieces []string
	fusedEnd := -1
	for end := n; end > 0; {
		node := best[end]
		if u.unkID >= 0 && node.id == u.unkID {
			if fusedEnd < 0 {
				fusedEnd = end
			}
		} else {
			if fusedEnd >= 0 {
				pieces = append(pieces, s[end:fusedEnd])
				fusedEnd = -1
			}
			pieces = append(pieces, s[node.start:end])
		}
		end = node.start
	}
	if fusedEnd >= 0 {
		pieces = append(pieces, s[:fusedEnd])
	}
	for i := len(pieces) - 1; i >= 0; i-- {
		p := pieces[i]
		if id, ok := u.ids[p]; ok {
			ids = append(ids, id)
			continue
		}
		if u.byteFallback {
			all := true
			for k := 0; k < len(p); k++ {
				if u.byteIDs[p[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				for k := 0; k < len(p); k++ {
					ids = append(ids, u.byteIDs[p[k]])
				}
				continue
			}
		}
		if u.unkID < 0 {
			return nil, errors.New("unigram: unknown piece and no unk_id")
		}
		ids = append(ids, u.unkID)
	}
	return ids, nil
}
