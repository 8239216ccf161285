// Command pgrecall measures the pgvector store against exact search: HNSW
// recall@k, query latency (medians, one query per round trip, as POST
// /search with one query makes), and load and index build time, on random
// unit vectors and on the Debian FAQ's chunks embedded by the model. It
// starts its own PostgreSQL (make deps-postgres) on loopback and prints one
// JSON object. It is run once by hand (make bench-pgvector), not by the
// test suite: the 100,000-vector case takes minutes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/pgstore"
	"github.com/embtune/embtune/pgstore/pgtest"
	"github.com/embtune/embtune/vecmath"
)

type caseResult struct {
	Name            string             `json:"name"`
	Vectors         int                `json:"vectors"`
	Queries         int                `json:"queries"`
	K               int                `json:"k"`
	LoadSeconds     float64            `json:"load_seconds"`
	HNSWBuildSecond float64            `json:"hnsw_build_seconds"`
	EmbeddedMedMs   float64            `json:"embedded_index_median_ms"`
	ExactPgMedMs    float64            `json:"pgvector_exact_median_ms"`
	ExactSameIDs    float64            `json:"pgvector_exact_same_ids_fraction"`
	HNSW            []efResult         `json:"hnsw"`
	Extra           map[string]float64 `json:"extra,omitempty"`
}

type efResult struct {
	EfSearch   int     `json:"ef_search"`
	Recall     float64 `json:"recall_at_k"`
	MedianMs   float64 `json:"median_ms"`
	P95Ms      float64 `json:"p95_ms"`
	SameIDsPct float64 `json:"same_ids_and_order_fraction"`
}

func main() {
	n := flag.Int("n", 100000, "random vectors")
	dim := flag.Int("dim", 384, "their dimension")
	nq := flag.Int("queries", 1000, "random queries")
	exactQ := flag.Int("exact-queries", 100, "queries timed for pgvector's exact search (a sequential scan each)")
	k := flag.Int("k", 10, "top k")
	clusters := flag.Int("clusters", 0, "draw the vectors around this many random centres (cosine about 0.7 to their centre), as embeddings cluster by topic; 0: uniform on the sphere")
	efs := flag.String("ef-search", "40,100,200,400", "hnsw.ef_search values to measure")
	model := flag.String("model", "third_party/models/all-MiniLM-L6-v2", "model for the Debian FAQ case (empty: skip it)")
	faqText := flag.String("faq-text", "third_party/debian-faq/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz", "the Debian FAQ to chunk")
	faqQuestions := flag.String("faq-questions", "testdata/data/debian-faq.jsonl", "the FAQ's questions, used as queries")
	flag.Parse()
	var ef []int
	for _, s := range strings.Split(*efs, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			log.Fatalf("-ef-search: %v", err)
		}
		ef = append(ef, v)
	}
	bin, err := pgtest.FindBin()
	if err != nil {
		log.Fatal(err)
	}
	srv, err := pgtest.StartServer(bin)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	ctx := context.Background()
	out := map[string]any{"cpus": runtime.NumCPU(), "hnsw_m": pgstore.HNSWM, "hnsw_ef_construction": pgstore.HNSWEfConstruction}
	var cases []caseResult

	if *model != "" {
		chunks, vecs, queries, qvecs := faqCase(ctx, *model, *faqText, *faqQuestions)
		cases = append(cases, measure(ctx, srv.URL, "debian_faq_chunks", chunks, vecs, queries, qvecs, *k, ef, len(queries)))
	}
	if *n > 0 {
		rng := rand.New(rand.NewPCG(42, 7))
		name := "random_unit"
		draw := func(m int) [][]float32 { return randomUnit(rng, m, *dim) }
		if *clusters > 0 {
			name = fmt.Sprintf("random_%d_clusters", *clusters)
			centres := randomUnit(rng, *clusters, *dim)
			draw = func(m int) [][]float32 {
				out := randomUnit(rng, m, *dim)
				for i, v := range out {
					c := centres[rng.IntN(len(centres))]
					for j := range v {
						v[j] += c[j]
					}
					out[i] = unit(v)
				}
				return out
			}
		}
		vecs := draw(*n)
		chunks := make([]corpus.Chunk, *n)
		for i := range chunks {
			chunks[i] = corpus.Chunk{ID: fmt.Sprintf("v%06d", i), Doc: "random", Text: "v"}
		}
		qvecs := draw(*nq)
		cases = append(cases, measure(ctx, srv.URL, name, chunks, vecs, make([]string, *nq), qvecs, *k, ef, *exactQ))
	}
	out["cases"] = cases
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func randomUnit(rng *rand.Rand, n, dim int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, dim)
		var s float64
		for j := range v {
			x := rng.NormFloat64()
			v[j] = float32(x)
			s += x * x
		}
		for j := range v {
			v[j] = float32(float64(v[j]) / math.Sqrt(s))
		}
		out[i] = v
	}
	return out
}

func faqCase(ctx context.Context, modelDir, text, questions string) ([]corpus.Chunk, [][]float32, []string, [][]float32) {
	m, err := minilm.Load(ctx, modelDir, minilm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	docs, _, err := corpus.ReadDocuments([]string{text})
	if err != nil {
		log.Fatal(err)
	}
	x, _, err := corpus.Build(ctx, corpus.Model{Folder: m.Folder, Text: m.Text(), Encoder: m}, docs, corpus.DefaultChunking(m.Text()), 32, nil)
	if err != nil {
		log.Fatal(err)
	}
	vecs := make([][]float32, x.Len())
	for i := range vecs {
		vecs[i] = x.Vector(i)
	}
	pairs, err := dataset.Load(questions)
	if err != nil {
		log.Fatal(err)
	}
	var qs []string
	for _, p := range pairs {
		qs = append(qs, p.Anchor)
	}
	qv, err := embedding.Queries(ctx, m, qs, 32) // the query prompt, as encode_query
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range qv {
		qv[i] = vecmath.Normalized(v)
	}
	return x.Chunks, vecs, qs, qv
}

func unit(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	for j := range v {
		v[j] = float32(float64(v[j]) / math.Sqrt(s))
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func quantile(ds []time.Duration, q float64) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return ms(s[min(len(s)-1, int(q*float64(len(s))))])
}

func measure(ctx context.Context, url, name string, chunks []corpus.Chunk, vecs [][]float32, queries []string, qvecs [][]float32, k int, efs []int, exactQ int) caseResult {
	r := caseResult{Name: name, Vectors: len(vecs), Queries: len(qvecs), K: k}
	x, err := corpus.FromVectors(corpus.Info{}, chunks, vecs)
	if err != nil {
		log.Fatal(err)
	}
	truth := make([][]string, len(qvecs))
	var lat []time.Duration
	for i, q := range qvecs {
		t0 := time.Now()
		res, err := x.Query(queries[i], q, k)
		lat = append(lat, time.Since(t0))
		if err != nil {
			log.Fatal(err)
		}
		truth[i] = ids(res)
	}
	r.EmbeddedMedMs = quantile(lat, 0.5)
	// How far apart the neighbours are: on uniform random vectors the 1st,
	// 10th and 100th nearest have nearly the same cosine, so a graph walk
	// has nothing to follow.
	r.Extra = map[string]float64{}
	nEv := min(100, len(qvecs))
	for i := 0; i < nEv; i++ {
		hits, err := x.Search(qvecs[i], min(100, len(vecs)))
		if err != nil {
			log.Fatal(err)
		}
		r.Extra["mean_cosine_rank_1"] += float64(hits[0].Score) / float64(nEv)
		r.Extra["mean_cosine_rank_10"] += float64(hits[min(9, len(hits)-1)].Score) / float64(nEv)
		r.Extra["mean_cosine_rank_100"] += float64(hits[len(hits)-1].Score) / float64(nEv)
	}

	table := name
	st, err := pgstore.Open(ctx, url, pgstore.Options{Table: table})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	w, err := st.Begin(ctx, corpus.Info{Model: name, ModelFingerprint: name, Dim: len(vecs[0])})
	if err != nil {
		log.Fatal(err)
	}
	rows := make([]pgstore.Row, len(vecs))
	for i := range rows {
		rows[i] = pgstore.Row{Ord: i, Chunk: chunks[i], Vector: vecs[i]}
	}
	t0 := time.Now()
	if err := w.Put(ctx, rows); err != nil {
		log.Fatal(err)
	}
	r.LoadSeconds = time.Since(t0).Seconds()
	t0 = time.Now()
	if ready, err := w.Finish(ctx); err != nil || !ready {
		log.Fatalf("finish: ready %v, %v", ready, err)
	}
	r.HNSWBuildSecond = time.Since(t0).Seconds()
	log.Printf("%s: loaded %d rows in %.1fs, HNSW built in %.1fs", name, len(vecs), r.LoadSeconds, r.HNSWBuildSecond)

	run := func(opts pgstore.Options, nq int) ([]time.Duration, float64, float64) {
		s, err := pgstore.Open(ctx, url, opts)
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		q, err := s.Searcher(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		var lat []time.Duration
		found, same := 0, 0
		for i := 0; i < nq; i++ {
			t0 := time.Now()
			res, err := q.QueryAll(ctx, queries[i:i+1], qvecs[i:i+1], k)
			lat = append(lat, time.Since(t0))
			if err != nil {
				log.Fatal(err)
			}
			got := ids(res[0])
			want := map[string]bool{}
			for _, id := range truth[i] {
				want[id] = true
			}
			for _, id := range got {
				if want[id] {
					found++
				}
			}
			if strings.Join(got, ",") == strings.Join(truth[i], ",") {
				same++
			}
		}
		return lat, float64(found) / float64(nq*len(truth[0])), float64(same) / float64(nq)
	}
	lat, _, same := run(pgstore.Options{Table: table, Exact: true}, min(exactQ, len(qvecs)))
	r.ExactPgMedMs, r.ExactSameIDs = quantile(lat, 0.5), same
	for _, ef := range efs {
		lat, recall, same := run(pgstore.Options{Table: table, EfSearch: ef}, len(qvecs))
		r.HNSW = append(r.HNSW, efResult{EfSearch: ef, Recall: recall, MedianMs: quantile(lat, 0.5), P95Ms: quantile(lat, 0.95), SameIDsPct: same})
		log.Printf("%s: ef_search %d recall@%d %.4f median %.2f ms", name, ef, k, recall, quantile(lat, 0.5))
	}
	return r
}

func ids(r corpus.Result) []string {
	out := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = h.ID
	}
	return out
}
