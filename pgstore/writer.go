package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/embtune/embtune/corpus"
)

// Row is one chunk to store with its embedding. Ord is the chunk's position
// in the corpus: exact search breaks score ties by it, as the embedded
// index breaks them by position.
type Row struct {
	Ord    int
	Chunk  corpus.Chunk
	Vector []float32
}

// PutBatch is how many rows one transaction upserts.
const PutBatch = 500

// Writer adds rows to a store. Several writers (processes or goroutines)
// may write one store at once: each holds a shared advisory lock for its
// run, and the last to finish builds the HNSW index and marks the store
// ready.
type Writer struct {
	s    *Store
	info corpus.Info
	// lock holds the session's advisory lock while the writer is open.
	lock *pgxpool.Conn
	key  int64
}

// Begin starts writing the store for a model described by info (its
// fingerprint and dimension are what matter). A store of another model or
// dimension, or a table of that name whose embedding column has another
// dimension, is refused. The store is marked building until Finish.
func (s *Store) Begin(ctx context.Context, info corpus.Info) (*Writer, error) {
	if info.Dim < 1 || info.Dim > 16000 {
		return nil, fmt.Errorf("pgstore: dimension %d is out of pgvector's range 1..16000", info.Dim)
	}
	if info.ModelFingerprint == "" {
		return nil, errors.New("pgstore: the model fingerprint is empty")
	}
	info.Format = corpus.Format
	w := &Writer{s: s, info: info}
	if err := s.pool.QueryRow(ctx, `SELECT hashtext('embtune:store:' || $1)::bigint`, s.table).Scan(&w.key); err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	var err error
	if w.lock, err = s.pool.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	// Shared with other writers; exclusive only for the finish (below).
	if _, err := w.lock.Exec(ctx, `SELECT pg_advisory_lock_shared($1)`, w.key); err != nil {
		w.lock.Release()
		return nil, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	s.mu.Lock()
	if s.writers == nil {
		s.writers = map[*Writer]struct{}{}
	}
	s.writers[w] = struct{}{}
	s.mu.Unlock()
	if err := w.prepare(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Writer) prepare(ctx context.Context) error {
	s := w.s
	meta, err := json.Marshal(w.info)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('embtune:schema'))`); err != nil {
			return fmt.Errorf("pgstore: %s: %w", s.where, err)
		}
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT info FROM `+metaTable+` WHERE name = $1`, s.table).Scan(&raw)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			raw = nil
		case err != nil:
			return fmt.Errorf("pgstore: %s: %w", s.where, err)
		default:
			var have corpus.Info
			if err := json.Unmarshal(raw, &have); err != nil {
				return fmt.Errorf("pgstore: store %q: info: %w", s.table, err)
			}
			if err := checkModel(s.table, have, w.info); err != nil {
				return err
			}
		}
		dim, err := columnDim(ctx, tx, s.table)
		if err != nil {
			return fmt.Errorf("pgstore: %s: %w", s.where, err)
		}
		switch {
		case dim == 0:
			_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (
				id        text PRIMARY KEY,
				ord       bigint NOT NULL,
				doc       text NOT NULL,
				title     text NOT NULL,
				start_off integer NOT NULL,
				end_off   integer NOT NULL,
				tokens    integer NOT NULL,
				text      text NOT NULL,
				embedding vector(%d) NOT NULL)`, s.ident(), w.info.Dim))
			if err != nil {
				return fmt.Errorf("pgstore: %s: creating %s: %w", s.where, s.table, err)
			}
		case dim != w.info.Dim:
			return fmt.Errorf("pgstore: table %q has embedding vector(%d), the model gives %d dimensions: use another --table, or drop it", s.table, dim, w.info.Dim)
		}
		if raw == nil {
			_, err = tx.Exec(ctx, `INSERT INTO `+metaTable+` (name, info, state) VALUES ($1, $2, $3)`, s.table, meta, StateBuilding)
		} else {
			_, err = tx.Exec(ctx, `UPDATE `+metaTable+` SET state = $2, updated = now() WHERE name = $1`, s.table, StateBuilding)
		}
		if err != nil {
			return fmt.Errorf("pgstore: %s: %w", s.where, err)
		}
		return nil
	})
}

// Missing returns the positions in chunks of those the store lacks, or
// holds with another text: what a resumed run still has to embed.
func (w *Writer) Missing(ctx context.Context, chunks []corpus.Chunk) ([]int, error) {
	var out []int
	for start := 0; start < len(chunks); start += 5000 {
		part := chunks[start:min(start+5000, len(chunks))]
		ids, texts := make([]string, len(part)), make([]string, len(part))
		for i, c := range part {
			ids[i], texts[i] = c.ID, c.Text
		}
		rows, err := w.s.pool.Query(ctx, `SELECT c.i - 1 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c(id, txt, i)
			LEFT JOIN `+w.s.ident()+` t ON t.id = c.id AND t.text = c.txt WHERE t.id IS NULL ORDER BY c.i`, ids, texts)
		if err != nil {
			return nil, fmt.Errorf("pgstore: %s: %w", w.s.where, err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("pgstore: %s: %w", w.s.where, err)
		}
		for _, i := range got {
			out = append(out, start+int(i))
		}
	}
	return out, nil
}

// Put upserts rows, PutBatch per transaction, so an interruption keeps
// every batch committed before it.
func (w *Writer) Put(ctx context.Context, rows []Row) error {
	for i, r := range rows {
		if len(r.Vector) != w.info.Dim {
			return fmt.Errorf("pgstore: chunk %s has %d dimensions, the store %d", r.Chunk.ID, len(r.Vector), w.info.Dim)
		}
		for _, v := range r.Vector {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("pgstore: chunk %s's embedding is not finite", r.Chunk.ID)
			}
		}
		if r.Chunk.ID == "" {
			return fmt.Errorf("pgstore: row %d has no chunk id", i)
		}
	}
	for start := 0; start < len(rows); start += PutBatch {
		part := rows[start:min(start+PutBatch, len(rows))]
		var err error
		for try := 0; try < 5; try++ {
			if err = w.put(ctx, part); err == nil || !isRetryable(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("pgstore: %s: writing %s: %w", w.s.where, w.s.table, err)
		}
	}
	return nil
}

// putName is the temporary table a batch is copied into before the upsert.
// Its "-" is outside the names a store table may have (tableName), so it
// can neither shadow a store table (pg_temp comes first in the search path)
// nor be shadowed by one.
const putName = "embtune-put"

var putTable = pgx.Identifier{"pg_temp", putName}.Sanitize()

func (w *Writer) put(ctx context.Context, rows []Row) error {
	// Upserting in id order makes concurrent writers lock rows in the same
	// order, so they seldom deadlock.
	sorted := slices.Clone(rows)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].Chunk.ID < sorted[b].Chunk.ID })
	sorted = dedupe(sorted)
	return pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+putTable+` (LIKE `+w.s.ident()+`) ON COMMIT DROP`); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", putName},
			[]string{"id", "ord", "doc", "title", "start_off", "end_off", "tokens", "text", "embedding"},
			pgx.CopyFromSlice(len(sorted), func(i int) ([]any, error) {
				r := sorted[i]
				c := r.Chunk
				return []any{c.ID, int64(r.Ord), c.Doc, c.Title, int32(c.Start), int32(c.End), int32(c.Tokens), c.Text, toVector(r.Vector)}, nil
			}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+w.s.ident()+` SELECT * FROM `+putTable+` ORDER BY id
			ON CONFLICT (id) DO UPDATE SET ord = excluded.ord, doc = excluded.doc, title = excluded.title,
				start_off = excluded.start_off, end_off = excluded.end_off, tokens = excluded.tokens,
				text = excluded.text, embedding = excluded.embedding`)
		return err
	})
}

// Prune deletes the store's chunks whose ids are not in keep, in one
// transaction: after a run has put every chunk of a corpus, what is left of
// documents that are gone, shorter or renamed. It returns how many it
// deleted. A run interrupted before Prune leaves them; its re-run, which
// embeds nothing already stored, prunes them. Concurrent writers of one
// store must then each write the whole corpus (or none of them prune).
func (w *Writer) Prune(ctx context.Context, keep []string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM `+w.s.ident()+` t
			WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS k(id) WHERE k.id = t.id)`, keep)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return setDocuments(ctx, tx, w.s)
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: %s: deleting chunks no longer in the corpus from %s: %w", w.s.where, w.s.table, err)
	}
	return n, nil
}

// setDocuments records the store's document count as its rows give it.
func setDocuments(ctx context.Context, tx pgx.Tx, s *Store) error {
	_, err := tx.Exec(ctx, `UPDATE `+metaTable+` SET info = jsonb_set(info, '{documents}', to_jsonb((SELECT count(DISTINCT doc) FROM `+s.ident()+`))),
		updated = now() WHERE name = $1`, s.table)
	return err
}

// dedupe keeps the last of rows with one id (sorted by id): an upsert may
// not touch a row twice.
func dedupe(rows []Row) []Row {
	out := rows[:0]
	for i, r := range rows {
		if i+1 < len(rows) && rows[i+1].Chunk.ID == r.Chunk.ID {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Finish ends this writer's run. When no other writer is still running, it
// builds the HNSW index (if missing) and marks the store ready, and reports
// ready; otherwise the last writer to finish does. A CREATE INDEX that is
// interrupted rolls back: the store then stays building until a re-run.
func (w *Writer) Finish(ctx context.Context) (ready bool, err error) {
	if w.lock == nil {
		return false, errors.New("pgstore: writer is closed")
	}
	defer w.Close()
	s := w.s
	if _, err := w.lock.Exec(ctx, `SELECT pg_advisory_unlock_shared($1)`, w.key); err != nil {
		return false, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	if err := w.lock.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, w.key).Scan(&ready); err != nil {
		return false, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	if !ready {
		return false, nil
	}
	err = pgx.BeginFunc(ctx, w.lock, func(tx pgx.Tx) error {
		// The index is named TABLE-hnsw, which no store table can be named
		// (stores made before were given TABLE_hnsw: any HNSW index counts).
		var have bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = $1::regclass AND a.amname = 'hnsw')`, s.ident()).Scan(&have); err != nil {
			return err
		}
		// One CREATE INDEX may use the server's parallel workers.
		if !have {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE INDEX %s ON %s USING hnsw (embedding vector_cosine_ops) WITH (m = %d, ef_construction = %d)`,
				pgx.Identifier{s.table + "-hnsw"}.Sanitize(), s.ident(), HNSWM, HNSWEfConstruction)); err != nil {
				return fmt.Errorf("building the HNSW index: %w", err)
			}
		}
		if err := setDocuments(ctx, tx, s); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE `+metaTable+` SET state = $2, updated = now() WHERE name = $1`, s.table, StateReady)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	return true, nil
}

// Close releases the writer's lock without finishing: the store stays
// building (a re-run resumes it). It is idempotent, and Store.Close calls
// it for writers left open.
func (w *Writer) Close() {
	w.s.mu.Lock()
	delete(w.s.writers, w)
	w.s.mu.Unlock()
	if w.lock == nil {
		return
	}
	// Release the locks now where the connection still answers: a closed
	// connection's locks go only when the server notices, and a writer that
	// finishes right after would find them still held. Closing the connection
	// then drops them whatever state an interrupted call left it in.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = w.lock.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	cancel()
	w.lock.Hijack().Close(context.Background())
	w.lock = nil
}
