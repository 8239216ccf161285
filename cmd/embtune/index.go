package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
)

func runIndex(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("index")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	output := fs.String("output", "", "index file to write (safetensors: embeddings plus chunk metadata)")
	chunkTokens := fs.Int("chunk-size", 0, "most word pieces in a chunk (0: the model's max_seq_length less [CLS] and [SEP])")
	overlap := fs.Int("chunk-overlap", -1, "word pieces of whole sentences repeated between chunks (-1: an eighth of the chunk size)")
	batch := fs.Int("batch-size", 32, "chunks per forward pass")
	var rf remoteFlags
	rf.register(fs)
	var sf storeFlags
	sf.register(fs, false)
	fromEmbeddings := fs.String("from-embeddings", "", "build from SageMaker Batch Transform output (folder or s3:// prefix) instead of embedding; with --chunks")
	chunksIn := fs.String("chunks", "", "with --from-embeddings: the transform job's input (--write-chunks output; folder or s3:// prefix)")
	writeChunks := fs.String("write-chunks", "", "write the chunks as JSON Lines files to this folder, for embtune sagemaker batch-embed, instead of embedding")
	truncateDim := registerTruncateDim(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *truncateDim < 0 {
		return usageError("--truncate-dim must be at least 1 (0: the model's full dimension)")
	}
	af := rf.aws // --from-embeddings s3:// and --endpoint share the AWS flags
	if *fromEmbeddings != "" {
		if fs.NArg() > 0 {
			return usageError("--from-embeddings takes no documents")
		}
		return indexFromEmbeddings(ctx, *fromEmbeddings, *chunksIn, mf.dir, *output, *truncateDim, sf, af, stdout)
	}
	if *output == "" && sf.url == "" && *writeChunks == "" {
		return usageError("give --output FILE, --store postgres://… or --write-chunks DIR")
	}
	if fs.NArg() == 0 {
		return usageError("give the documents to index: files or folders of .txt, .md, .rst or .jsonl ({\"text\",\"id\",\"title\"}), optionally gzipped")
	}
	// A killed earlier run leaves its temporary index file beside the output.
	if _, err := atomicfile.RemoveStale(*output); err != nil {
		return err
	}
	docs, skipped, err := corpus.ReadDocuments(fs.Args())
	if err != nil {
		return err
	}
	// With a remote encoder the folder still gives the tokenizer (chunking)
	// and the index's model identity; the server must serve that model.
	enc, err := rf.encoder(ctx)
	if err != nil {
		return err
	}
	var model corpus.Model
	if enc != nil {
		folder, text, err := hf.Open(mf.dir, mf.maxSeqLength)
		if err != nil {
			return err
		}
		if enc, err = mf.remoteWithPrompts(enc); err != nil {
			return err
		}
		model = corpus.Model{Folder: folder, Text: text, Encoder: enc}
		if p, ok := enc.(embedding.Prompted); ok && p.Document != "" {
			model.DocumentPrompt = p.Document
			if model.PromptTokens, err = text.WordPieces(p.Document); err != nil {
				return fmt.Errorf("document prompt: %w", err)
			}
		}
	} else {
		m, err := mf.load(ctx)
		if err != nil {
			return err
		}
		defer m.Close()
		model = corpus.Model{Folder: m.Folder, Text: m.Text(), Encoder: m, DocumentPrompt: m.Prompt(hf.RoleDocument)}
		if p := model.DocumentPrompt; p != "" {
			if model.PromptTokens, err = m.WordPieces(p); err != nil {
				return fmt.Errorf("document prompt: %w", err)
			}
		}
	}
	if *truncateDim > 0 {
		if model.Encoder, err = truncating(model.Encoder, *truncateDim, model.Folder.Dim()); err != nil {
			return err
		}
		model.Dim = *truncateDim
	}
	c := corpus.DefaultChunking(model.Text)
	if model.PromptTokens > 0 && model.PromptTokens < c.MaxTokens {
		// The document prompt shares each chunk's window, as in encode_document.
		c = corpus.Chunking{MaxTokens: c.MaxTokens - model.PromptTokens, Overlap: (c.MaxTokens - model.PromptTokens) / 8}
	}
	if *chunkTokens > 0 {
		c.MaxTokens = *chunkTokens
		c.Overlap = c.MaxTokens / 8
	}
	if *overlap >= 0 {
		c.Overlap = *overlap
	}
	if err := c.Validate(); err != nil {
		return usageError("%v", err)
	}
	slog.Info("indexing", "documents", len(docs), "skipped_empty", skipped, "chunk_size", c.MaxTokens, "chunk_overlap", c.Overlap)
	if sf.url != "" || *writeChunks != "" {
		info, chunks, st, err := corpus.Split(model, docs, c)
		if err != nil {
			return err
		}
		if *writeChunks != "" {
			files, err := corpus.WriteChunks(*writeChunks, chunks, 0)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "wrote %d chunks of %d documents to %d files in %s\n", st.Chunks, st.Documents, len(files), *writeChunks)
			return err
		}
		return indexToStore(ctx, sf, model.Encoder, info, chunks, *batch, stdout)
	}
	start := time.Now()
	x, st, err := corpus.Build(ctx, model, docs, c, *batch, func(done, total int) {
		slog.Info("embedded", "chunks", done, "of", total, "chunks_per_sec", fmt.Sprintf("%.1f", float64(done)/time.Since(start).Seconds()))
	})
	if err != nil {
		return err
	}
	if sf.appendOnly {
		if x, err = appendToIndexFile(*output, x); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(*output), 0o755); err != nil {
		return err
	}
	if err := x.Save(*output); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "indexed %d documents as %d chunks (%d truncated) in %.1fs: %s\n",
		st.Documents, st.Chunks, st.Truncated, time.Since(start).Seconds(), *output)
	return err
}

func runQuery(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("query")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	indexPath := fs.String("index", "", "index file written by embtune index")
	var sf storeFlags
	sf.register(fs, true)
	topK := fs.Int("top-k", 5, "results per query")
	truncateDim := registerTruncateDim(fs)
	asJSON := fs.Bool("json", false, "one JSON object per query: {\"query\", \"hits\": [{rank, score, id, doc, text, …}]}")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *topK < 1 {
		return usageError("--top-k must be at least 1")
	}
	if *truncateDim < 0 {
		return usageError("--truncate-dim must be at least 1 (0: the index's dimension)")
	}
	queries := fs.Args()
	if len(queries) == 0 {
		var err error
		if queries, err = readLines(stdin); err != nil {
			return err
		}
	}
	if len(queries) == 0 {
		return usageError("give queries as arguments or one per line on standard input")
	}
	x, info, closeStore, err := openSearcher(ctx, *indexPath, sf, &mf)
	if err != nil {
		return err
	}
	defer closeStore()
	if mf.maxSeqLength == 0 {
		mf.maxSeqLength = info.MaxSeqLength
	}
	m, err := mf.load(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	// Without --truncate-dim, an index built with one (a Matryoshka
	// model's first dims) is queried at its own dimension.
	dim := *truncateDim
	if dim == 0 && info.Dim < m.Dim() {
		dim = info.Dim
	}
	qenc, err := truncating(m, dim, m.Dim())
	if err != nil {
		return err
	}
	queryDim := m.Dim()
	if dim > 0 {
		queryDim = dim
	}
	if err := checkIndexDim(info.Dim, queryDim, *truncateDim > 0); err != nil {
		return err
	}
	vecs, err := embedding.Queries(ctx, qenc, queries, 0) // with the query prompt, as encode_query
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	results, err := x.QueryAll(ctx, queries, vecs, *topK)
	if err != nil {
		return err
	}
	for i, q := range queries {
		res := results[i]
		if *asJSON {
			if err := enc.Encode(res); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(w, "%s\n", q)
		for _, h := range res.Hits {
			fmt.Fprintf(w, "%3d  %.4f  %s  %s\n", h.Rank, h.Score, h.ID, excerpt(h.Text, 100))
		}
		if i < len(queries)-1 {
			fmt.Fprintln(w)
		}
	}
	return w.Flush()
}

// excerpt folds whitespace and shortens s to about n runes.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// appendToIndexFile is x with the chunks of the index file at path that x
// lacks (--append); x alone when there is no such file yet.
func appendToIndexFile(path string, x *corpus.Index) (*corpus.Index, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return x, nil
	}
	old, err := corpus.Load(path)
	if err != nil {
		return nil, err
	}
	return corpus.Append(old, x)
}
