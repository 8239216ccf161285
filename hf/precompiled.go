package hf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// precompiled is SentencePiece's compiled normalization rules (the
// "precompiled_charsmap" of XLM-R, T5, mBART...): a darts-clone double-array
// trie from UTF-8 sequences to offsets into a block of NUL-terminated
// replacements. It is applied per grapheme cluster as HF's Precompiled
// normalizer does: a whole cluster shorter than 6 bytes if the trie knows a
// prefix of it, else character by character.
type precompiled struct {
	units      []uint32
	normalized string
	ascii      [utf8.RuneSelf]asciiRule // transform of each ASCII character alone
}

type asciiRule struct {
	repl string
	ok   bool
}

func newPrecompiled(blob []byte) (*precompiled, error) {
	if len(blob) < 4 {
		return nil, errors.New("precompiled_charsmap is truncated")
	}
	size := binary.LittleEndian.Uint32(blob)
	if size%4 != 0 || uint64(size) > uint64(len(blob)-4) {
		return nil, fmt.Errorf("precompiled_charsmap: trie size %d does not fit in %d bytes", size, len(blob))
	}
	p := &precompiled{units: make([]uint32, size/4)}
	for i := range p.units {
		p.units[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	norm := blob[4+size:]
	if !utf8.Valid(norm) {
		return nil, errors.New("precompiled_charsmap: replacements are not UTF-8")
	}
	p.normalized = string(norm)
	if len(p.units) == 0 {
		return nil, errors.New("precompiled_charsmap: empty trie")
	}
	for c := range p.ascii {
		p.ascii[c].repl, p.ascii[c].ok = p.transform(string(rune(c)))
	}
	return p, nil
}

// firstPrefixValue is the value of the shortest key that is a prefix of
// key (spm_precompiled takes the first of its common-prefix results).
func (p *precompiled) firstPrefixValue(key string) (uint32, bool) {
	u := p.units
	pos := uint32(0)
	unit := u[pos]
	pos ^= unitOffset(unit)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if int(pos) >= len(u) {
			return 0, false
		}
		unit = u[pos]
		if unit&((1<<31)|0xFF) != uint32(c) {
			return 0, false
		}
		pos ^= unitOffset(unit)
		if int(pos) >= len(u) {
			return 0, false
		}
		if (unit>>8)&1 == 1 {
			return u[pos] & ((1 << 31) - 1), true
		}
	}
	return 0, false
}

func unitOffset(unit uint32) uint32 { return (unit >> 10) << ((unit & (1 << 9)) >> 6) }

// transform returns the replacement of chunk, if the trie has one.
func (p *precompiled) transform(chunk string) (string, bool) {
	v, ok := p.firstPrefixValue(chunk)
	if !ok || int(v) > len(p.normalized) {
		return "", false
	}
	rest := p.normalized[v:]
	if end := strings.IndexByte(rest, 0); end >= 0 {
		rest = rest[:end]
	}
	return rest, true
}

func (p *precompiled) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	state := -1
	for s != "" {
		// An ASCII character followed by another (but not CR LF) is a
		// grapheme cluster of its own.
		if c := s[0]; c < utf8.RuneSelf && (len(s) == 1 || (s[1] < utf8.RuneSelf && !(c == '\r' && s[1] == '\n'))) {
			if r := p.ascii[c]; r.ok {
				b.WriteString(r.repl)
			} else {
				b.WriteByte(c)
			}
			s, state = s[1:], -1
			continue
		}
		var cluster string
		cluster, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		if len(cluster) < 6 {
			if r, ok := p.transform(cluster); ok {
				b.WriteString(r)
				continue
			}
		}
		for i, c := range cluster {
			part := cluster[i : i+utf8.RuneLen(c)]
			if r, ok := p.transform(part); ok {
				b.WriteString(r)
			} else {
				b.WriteString(part)
			}
		}
	}
	return b.String()
}
