// Package pgstore keeps embtune's chunks and their embeddings in PostgreSQL
// with pgvector, beside the embedded index file of package corpus, and
// answers the same queries with the same result shape (corpus.Result).
//
// One table holds one store's chunks, keyed by chunk id; the table
// embtune_stores records each store's model fingerprint, dimension and
// state. A store is "building" from the moment a writer starts until the
// last concurrent writer has finished and the HNSW index exists; queries
// refuse a store that is not "ready", so an interrupted run is never
// searched as if it were whole. Re-running the same indexing resumes: the
// chunks already stored with the same text are not embedded again.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/embtune/embtune/corpus"
)

// DefaultTable is the table a store lives in unless told otherwise.
const DefaultTable = "embtune_chunks"

// metaTable records every store of a database: one row per chunk table.
const metaTable = "embtune_stores"

// HNSW build parameters (pgvector's CREATE INDEX ... WITH (m, ef_construction)).
// m = 16 is pgvector's default and the usual choice for 384-d sentence
// embeddings: more links per node cost memory and build time for little
// recall at this size. ef_construction = 128, twice pgvector's default,
// buys a better graph (recall) for about twice the build time, which is paid
// once; see docs/benchmarks.md, "Stores", for the measured recall.
const (
	HNSWM              = 16
	HNSWEfConstruction = 128
	// DefaultEfSearch is hnsw.ef_search for queries (pgvector's default is
	// 40): the candidate list a query keeps. It is raised to top_k when
	// larger, and pgvector caps it at 1000.
	DefaultEfSearch = 100
)

// States of a store.
const (
	StateBuilding = "building"
	StateReady    = "ready"
)

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,50}$`)

// Options choose the table and how queries search.
type Options struct {
	// Table is the chunk table; empty is DefaultTable.
	Table string
	// Exact ranks every row (a sequential scan, as the embedded index does)
	// instead of walking the HNSW index.
	Exact bool
	// EfSearch is hnsw.ef_search; zero is DefaultEfSearch.
	EfSearch int
}

// Store is a connection pool to one store's table.
type Store struct {
	pool  *pgxpool.Pool
	table string
	opts  Options
	// where names the server for messages, without the password.
	where string

	// mu guards writers: the writers begun on this store and not yet
	// finished or closed, which Close closes first.
	mu      sync.Mutex
	writers map[*Writer]struct{}
}

// IsURL reports whether s names a PostgreSQL database rather than a file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at dsn (a postgres:// URL or a libpq
// key=value string), installs pgvector there when missing, and creates the
// table of stores. It fails with a clear error when the server cannot be
// reached within 10 seconds (or the URL's connect_timeout).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if !tableName.MatchString(opts.Table) {
		return nil, fmt.Errorf("pgstore: table name %q: use lower-case letters, digits and _ (at most 51)", opts.Table)
	}
	if opts.Table == metaTable {
		return nil, fmt.Errorf("pgstore: table name %q is the table of stores itself: use another --table", opts.Table)
	}
	if opts.EfSearch == 0 {
		opts.EfSearch = DefaultEfSearch
	}
	if opts.EfSearch < 1 || opts.EfSearch > 1000 {
		return nil, fmt.Errorf("pgstore: ef_search must be between 1 and 1000, got %d", opts.EfSearch)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", redact(dsn), err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	where := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	s := &Store{table: opts.Table, opts: opts, where: where}
	// pgvector's types are registered on each connection, so the extension
	// must exist before the pool's first connection.
	if err := s.setup(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	cfg.AfterConnect = pgxvec.RegisterTypes
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", where, err)
	}
	return s, nil
}

func (s *Store) setup(ctx context.Context, cc *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("pgstore: cannot connect to %s (is the server running and reachable?): %w", s.where, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Concurrent writers would race on CREATE EXTENSION / TABLE.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('embtune:schema'))`); err != nil {
			return fmt.Errorf("pgstore: %s: %w", s.where, err)
		}
		var have bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')`).Scan(&have); err != nil {
			return fmt.Errorf("pgstore: %s: %w", s.where, err)
		}
		if !have {
			if _, err := tx.Exec(ctx, `CREATE EXTENSION vector`); err != nil {
				return fmt.Errorf("pgstore: %s has no pgvector and it could not be installed (CREATE EXTENSION vector): %w", s.where, err)
			}
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+metaTable+` (
			name    text PRIMARY KEY,
			info    jsonb NOT NULL,
			state   text NOT NULL,
			updated timestamptz NOT NULL DEFAULT now())`)
		if err != nil {
			return fmt.Errorf("pgstore: %s: creating %s: %w", s.where, metaTable, err)
		}
		return nil
	})
}

// redact drops a password from a URL for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if err != nil {
			return "the store URL"
		}
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Close closes the pool.
//
// Writers still open are closed first, as Writer.Close does (their stores
// stay building): the pool's Close waits for every connection to come
// back, and an open writer holds one. Close must not run while a writer's
// call is in flight.
func (s *Store) Close() {
	s.mu.Lock()
	open := make([]*Writer, 0, len(s.writers))
	for w := range s.writers {
		open = append(open, w)
	}
	s.mu.Unlock()
	for _, w := range open {
		w.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// Table is the chunk table's name.
func (s *Store) Table() string { return s.table }

func (s *Store) ident() string { return pgx.Identifier{s.table}.Sanitize() }

// Status is what the table of stores records about a store.
type Status struct {
	Info  corpus.Info
	State string
	Rows  int
}

// ErrNoStore is returned for a table no embtune run has written.
var ErrNoStore = errors.New("no such store")

// Status reads the store's record and counts its rows.
func (s *Store) Status(ctx context.Context) (Status, error) {
	var st Status
	var info []byte
	err := s.pool.QueryRow(ctx, `SELECT info, state FROM `+metaTable+` WHERE name = $1`, s.table).Scan(&info, &st.State)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("pgstore: %s has no embtune store %q (build it with embtune index --store): %w", s.where, s.table, ErrNoStore)
	}
	if err != nil {
		return st, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	if err := json.Unmarshal(info, &st.Info); err != nil {
		return st, fmt.Errorf("pgstore: %s: store %q: info: %w", s.where, s.table, err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.ident()).Scan(&st.Rows); err != nil {
		return st, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	return st, nil
}

// checkModel refuses info of another model or dimension than the stored one.
func checkModel(table string, have, want corpus.Info) error {
	if have.ModelFingerprint != want.ModelFingerprint {
		return fmt.Errorf("pgstore: store %q holds embeddings of another model (%s, fingerprint %.12s) than %s (fingerprint %.12s): use that model, another --table, or drop the table",
			table, have.Model, have.ModelFingerprint, want.Model, want.ModelFingerprint)
	}
	if have.Dim != want.Dim {
		return fmt.Errorf("pgstore: store %q holds %d-dimensional embeddings, the model gives %d", table, have.Dim, want.Dim)
	}
	if want.DocumentPrompt != nil {
		if err := corpus.CheckDocumentPrompt(have, *want.DocumentPrompt); err != nil {
			return fmt.Errorf("pgstore: store %q: %w", table, err)
		}
	}
	return nil
}

// columnDim returns the declared dimension of table's embedding column, or
// 0 when the table does not exist.
func columnDim(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table string) (int, error) {
	var reg *string
	if err := q.QueryRow(ctx, `SELECT to_regclass($1)::text`, pgx.Identifier{table}.Sanitize()).Scan(&reg); err != nil {
		return 0, err
	}
	if reg == nil {
		return 0, nil
	}
	var typ string
	var mod int
	err := q.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod), atttypmod FROM pg_attribute
		WHERE attrelid = $1::regclass AND attname = 'embedding' AND NOT attisdropped`, pgx.Identifier{table}.Sanitize()).Scan(&typ, &mod)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("table %q exists and has no embedding column: it is not an embtune store; use another --table", table)
	}
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(typ, "vector(") || mod < 1 {
		return 0, fmt.Errorf("table %q has an embedding column of type %s, not vector(n): it is not an embtune store; use another --table", table, typ)
	}
	return mod, nil
}

// isRetryable reports a deadlock or serialisation failure, which concurrent
// upserts of the same ids can meet; the transaction is then run again.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

func toVector(v []float32) pgvector.Vector { return pgvector.NewVector(slices.Clone(v)) }
