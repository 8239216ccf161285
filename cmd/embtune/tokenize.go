package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/embtune/embtune/hf"
)

// runTokenize prints what the model sees: for each text (the arguments, or
// one per input line), its input ids and tokens as sentence-transformers
// would feed them, prompt and truncation included. It reads only the
// folder's configuration and tokenizer.json, no weights.
func runTokenize(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("tokenize")
	var mf modelFlags
	mf.register(fs)
	promptName := fs.String("prompt-name", "", "a prompt name from config_sentence_transformers.json (encode's prompt_name=)")
	var prompt optionalString
	fs.Var(&prompt, "prompt", "prompt text prepended to every text (encode's prompt=)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *promptName != "" && prompt.set {
		return usageError("give --prompt or --prompt-name, not both")
	}
	folder, text, err := hf.Open(mf.dir, mf.maxSeqLength)
	if err != nil {
		return err
	}
	pre, err := folder.ResolvePrompt(hf.PromptChoice{Name: *promptName, Text: prompt.ptr()}, hf.RoleDefault)
	if err != nil {
		return usageError("%v", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	one := func(s string) error {
		ids, truncated, err := text.Prepare(pre + s)
		if err != nil {
			return err
		}
		tokens := make([]string, len(ids))
		for i, id := range ids {
			tokens[i] = text.Tokenizer.TokenString(id)
		}
		return enc.Encode(struct {
			IDs       []int64  `json:"ids"`
			Tokens    []string `json:"tokens"`
			Truncated bool     `json:"truncated"`
		}{ids, tokens, truncated})
	}
	if fs.NArg() > 0 {
		for _, s := range fs.Args() {
			if err := one(s); err != nil {
				return err
			}
		}
		return nil
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := one(sc.Text()); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return sc.Err()
}
