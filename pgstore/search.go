package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/embtune/embtune/corpus"
)

// Searcher answers queries from a ready store built with one model. It
// satisfies corpus.Searcher.
type Searcher struct {
	s    *Store
	info corpus.Info
	rows int
}

// Searcher checks that the store is ready and was built with the model
// whose fingerprint is fingerprint (corpus.ModelFingerprint), and returns
// a searcher for it.
func (s *Store) Searcher(ctx context.Context, fingerprint string) (*Searcher, error) {
	st, err := s.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Info.ModelFingerprint != fingerprint {
		return nil, fmt.Errorf("pgstore: store %q was built with another model (%s, fingerprint %.12s) than this one (fingerprint %.12s): query with that model or rebuild the store",
			s.table, st.Info.Model, st.Info.ModelFingerprint, fingerprint)
	}
	if err := checkReady(s.table, st.State); err != nil {
		return nil, err
	}
	return &Searcher{s: s, info: st.Info, rows: st.Rows}, nil
}

func checkReady(table, state string) error {
	if state != StateReady {
		return fmt.Errorf("pgstore: store %q is %s: an indexing run is still writing it or was interrupted; re-run embtune index to finish it", table, state)
	}
	return nil
}

// Info describes how the store was built.
func (q *Searcher) Info() corpus.Info { return q.info }

// Len is the number of chunks when the searcher was opened.
func (q *Searcher) Len() int { return q.rows }

// QueryAll returns the k chunks nearest each query vector by cosine
// similarity, best first, in one transaction that first checks that the
// store is still ready. Score is 1 - pgvector's cosine distance. With
// Options.Exact, every row is ranked and ties keep corpus order, as in
// the embedded index; otherwise the HNSW index is walked with ef_search
// max(Options.EfSearch, k).
func (q *Searcher) QueryAll(ctx context.Context, queries []string, vecs [][]float32, k int) ([]corpus.Result, error) {
	if len(queries) != len(vecs) {
		return nil, fmt.Errorf("search: %d queries but %d vectors", len(queries), len(vecs))
	}
	if k < 1 {
		return nil, fmt.Errorf("search: top k must be at least 1, got %d", k)
	}
	for _, v := range vecs {
		if len(v) != q.info.Dim {
			return nil, fmt.Errorf("search: query has %d dimensions, the store %d", len(v), q.info.Dim)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, errors.New("search: the query vector is not finite")
			}
		}
	}
	s := q.s
	out := make([]corpus.Result, len(queries))
	order := "embedding <=> $1"
	if s.opts.Exact {
		order += ", ord"
	}
	sql := `SELECT id, doc, title, start_off, end_off, tokens, text, embedding <=> $1 FROM ` + s.ident() +
		` ORDER BY ` + order + ` LIMIT $2`
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM `+metaTable+` WHERE name = $1`, s.table).Scan(&state); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("store %q is gone", s.table)
			}
			return err
		}
		if err := checkReady(s.table, state); err != nil {
			return err
		}
		if s.opts.Exact {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off`); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL hnsw.ef_search = %d`, min(1000, max(s.opts.EfSearch, k)))); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, v := range vecs {
			b.Queue(sql, toVector(v), k)
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for i := range vecs {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			res := corpus.Result{Query: queries[i], Hits: []corpus.Match{}}
			for rows.Next() {
				var m corpus.Match
				var start, end, tokens int32
				var dist float64
				if err := rows.Scan(&m.ID, &m.Doc, &m.Title, &start, &end, &tokens, &m.Text, &dist); err != nil {
					rows.Close()
					return err
				}
				m.Start, m.End, m.Tokens = int(start), int(end), int(tokens)
				m.Rank = len(res.Hits) + 1
				m.Score = float32(1 - dist)
				res.Hits = append(res.Hits, m)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			out[i] = res
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: search: %w", s.where, err)
	}
	return out, nil
}

var _ corpus.Searcher = (*Searcher)(nil)
