package serve

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/embtune/embtune/corpus"
)

// handleSearch is POST /search (searchRequest), searching the index the
// server was started with (Config.Index or Config.Store). It answers
// {"results": [{"query", "hits": [{rank, score, id, doc, title, start,
// end, tokens, text}]}]}, one result per query.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) error {
	store := s.searcher()
	if store == nil {
		return errorf(KindNotFound, "this server has no index; start it with --index FILE or --store postgres://… (embtune index)")
	}
	body, err := s.begin(w, r)
	if err != nil {
		return err
	}
	q, err := decodeSearch(body, s.cfg.MaxInputs, store.Len())
	if err != nil {
		return err
	}
	res, err := s.core.Embed(r.Context(), q.embedInput)
	if err != nil {
		return err
	}
	var out struct {
		Results []corpus.Result `json:"results"`
	}
	if out.Results, err = store.QueryAll(r.Context(), q.Texts, res.Vectors, q.TopK); err != nil {
		if r.Context().Err() != nil {
			return errorf(KindCancelled, "request cancelled")
		}
		// The store is a database that may be down or being rebuilt.
		s.log.Error("search failed", "err", err)
		return errorf(KindUnavailable, "%w", err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return errorf(KindInternal, "%w", err)
	}
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.Truncated))
	writeJSON(w, http.StatusOK, b)
	return nil
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
