package hf

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Text is how a sentence-transformers folder turns text into input ids,
// as SentenceTransformer.tokenize does: Python's str.strip(), lower-casing
// when sentence_bert_config.json says do_lower_case, the tokenizer, and
// truncation at max_seq_length. The model, the server and the indexer all
// prepare text through it, and it validates UTF-8 before anything else:
// lower-casing first would turn bad bytes into U+FFFD silently.
type Text struct {
	Tokenizer    *Tokenizer
	LowerCase    bool
	MaxSeqLength int
}

// Open reads a sentence-transformers folder's configuration and tokenizer,
// everything but the weights. maxSeqLength > 0 overrides the folder's
// max_seq_length, within the model's position embeddings.
func Open(dir string, maxSeqLength int) (Folder, Text, error) {
	folder, err := ReadFolder(dir)
	if err != nil {
		return folder, Text{}, err
	}
	tok, err := LoadTokenizer(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return folder, Text{}, err
	}
	if tok.VocabSize() > folder.Config.VocabSize {
		return folder, Text{}, fmt.Errorf("tokenizer has %d tokens but config vocab_size is %d", tok.VocabSize(), folder.Config.VocabSize)
	}
	text := Text{Tokenizer: tok, LowerCase: folder.DoLowerCase, MaxSeqLength: folder.MaxSeqLength}
	if maxSeqLength > 0 {
		if maxSeqLength < 2 || maxSeqLength > folder.Config.MaxPositionEmbeddings {
			return folder, Text{}, fmt.Errorf("max sequence length %d must be in [2, %d]", maxSeqLength, folder.Config.MaxPositionEmbeddings)
		}
		text.MaxSeqLength = maxSeqLength
	}
	return folder, text, nil
}

// Prepare returns text's input ids ([CLS] … [SEP]) cut at MaxSeqLength,
// and whether it was cut.
func (x Text) Prepare(text string) (ids []int64, truncated bool, err error) {
	return x.PrepareTruncating(text, TruncateRight)
}

// PrepareTruncating is Prepare cutting the side given (TEI's
// truncation_direction).
func (x Text) PrepareTruncating(text string, side Truncation) (ids []int64, truncated bool, err error) {
	if text, err = x.normalize(text); err != nil {
		return nil, false, err
	}
	return x.Tokenizer.EncodeTruncating(text, x.MaxSeqLength, side)
}

// Length is how many input ids text becomes without truncation, special
// tokens included.
func (x Text) Length(text string) (int, error) {
	ids, err := x.IDs(text)
	return len(ids), err
}

// IDs returns text's input ids without truncation, special tokens
// included: Prepare before it cuts at MaxSeqLength (TEI's /tokenize).
func (x Text) IDs(text string) ([]int64, error) {
	text, err := x.normalize(text)
	if err != nil {
		return nil, err
	}
	return x.Tokenizer.Tokenize(strings.TrimFunc(text, isPythonSpace))
}

// WordPieces is Length without the special tokens: how much of the model's
// window text fills.
func (x Text) WordPieces(text string) (int, error) {
	n, err := x.Length(text)
	return n - x.Tokenizer.SpecialTokens(), err
}

func (x Text) normalize(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", fmt.Errorf("%w (first bad byte at offset %d)", ErrInvalidUTF8, InvalidUTF8Offset(text))
	}
	// sentence-transformers 6.2 lower-cases by putting tokenizers' Lowercase
	// normalizer in front of the tokenizer's own, unless it has one: Rust's
	// per-character to_lowercase, not Python's str.lower.
	if x.LowerCase && !x.Tokenizer.HasLowercase() {
		text = lowercaseNormalizer{}.normalize(text)
	}
	return text, nil
}

// SpecialTokens is how many ids the post-processor adds around a text
// ([CLS] and [SEP] for BERT).
func (t *Tokenizer) SpecialTokens() int { return len(t.prefixIDs) + len(t.suffixIDs) }

// SpecialPrefix is how many of SpecialTokens come before the text ([CLS]).
func (t *Tokenizer) SpecialPrefix() int { return len(t.prefixIDs) }
