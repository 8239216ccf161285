package serve

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/hf"
)

// MaxTopK bounds top_k in /search requests, and MaxSearchHits the hits
// (queries × top_k) of one response, each of which carries its chunk's text.
const (
	MaxTopK       = 1000
	MaxSearchHits = 10000
)

// handleSearch is POST /search: {"query": text or [texts], "top_k": 5}
// answers {"results": [{"query", "hits": [{rank, score, id, doc, title,
// start, end, tokens, text}]}]}, one result per query, searching the index
// the server was started with (Config.Index). Queries are truncated at
// max_seq_length, as sentence-transformers does.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	store := s.searcher()
	if store == nil {
		writeError(w, errorf(http.StatusNotFound, typeNotFound, "this server has no index; start it with --index FILE or --store postgres://… (embtune index)"))
		return
	}
	m, body, ok := s.begin(w, r)
	if !ok {
		return
	}
	if firstByte(body) != '{' {
		writeError(w, badRequest(`request body must be a JSON object {"query": ..., "top_k": ...}`))
		return
	}
	var req struct {
		Query json.RawMessage `json:"query"`
		TopK  *int            `json:"top_k"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, jsonError(err))
		return
	}
	k := 5
	if req.TopK != nil {
		k = *req.TopK
	}
	if k < 1 || k > MaxTopK {
		writeError(w, badRequest("top_k must be between 1 and %d, got %d", MaxTopK, k))
		return
	}
	queries, aerr := decodeInputs(req.Query, "`query`", s.cfg.MaxInputs)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if hits := len(queries) * min(k, max(1, store.Len())); hits > MaxSearchHits {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, typeTooLarge,
			"%d queries × top_k %d is %d hits, more than %d; split the request", len(queries), k, hits, MaxSearchHits))
		return
	}
	// Queries get the query prompt, as encode_query (the index holds
	// documents embedded with the document prompt).
	res, aerr := s.embed(r.Context(), m, "search", queries, m.Prompt(hf.RoleQuery), true, true)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var out struct {
		Results []corpus.Result `json:"results"`
	}
	var err error
	if out.Results, err = store.QueryAll(r.Context(), queries, res.vecs, k); err != nil {
		if r.Context().Err() != nil {
			writeError(w, errorf(499, typeClientCancelled, "request cancelled"))
			return
		}
		// The store is a database that may be down or being rebuilt.
		s.log.Error("search failed", "err", err)
		writeError(w, errorf(http.StatusServiceUnavailable, typeUnavailable, "%v", err))
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, typeInternal, "%v", err))
		return
	}
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.truncated))
	writeJSON(w, http.StatusOK, b)
}

// searcher is the store POST /search answers from: Config.Store, else
// Config.Index, else nil.
func (s *Server) searcher() corpus.Searcher {
	if s.cfg.Store != nil {
		return s.cfg.Store
	}
	if s.cfg.Index != nil {
		return s.cfg.Index
	}
	return nil
}
