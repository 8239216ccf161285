package serve

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TEI's POST /tokenize: the ids the model sees, [CLS] and [SEP] marked
// special, and the same ids as the model's own tokenizer.
func TestTokenizeTEI(t *testing.T) {
	ts := startReady(t, Config{})
	m := sharedModel(t)
	want, err := m.Text().IDs(textA)
	require.NoError(t, err)

	resp, body := postJSON(t, ts.url+"/tokenize", `{"inputs": "`+textA+`"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got [][]simpleToken
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got, 1)
	require.Len(t, got[0], len(want))
	for i, tok := range got[0] {
		require.Equal(t, want[i], tok.ID)
		require.Equal(t, m.Tokenizer.TokenString(tok.ID), tok.Text)
		require.Equal(t, i == 0 || i == len(want)-1, tok.Special, "token %d %q", i, tok.Text)
		require.Nil(t, tok.Start)
	}
	require.Equal(t, "[CLS]", got[0][0].Text)

	resp, body = postJSON(t, ts.url+"/tokenize", `{"inputs": ["`+textA+`", "`+textB+`"], "add_special_tokens": false}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	got = nil
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got, 2)
	require.Len(t, got[0], len(want)-2)
	for _, tok := range got[0] {
		require.False(t, tok.Special)
	}

	// Not truncated at max_seq_length, as in TEI.
	long := ""
	for i := 0; i < 300; i++ {
		long += "word "
	}
	resp, body = postJSON(t, ts.url+"/tokenize", `{"inputs": "`+long+`"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	got = nil
	require.NoError(t, json.Unmarshal(body, &got))
	require.Greater(t, len(got[0]), m.MaxSeqLength)

	for _, bad := range []string{`{"inputs": 5}`, `{"text": "x"}`, `"x"`, `{"inputs": "x", "prompt_name": "nosuch"}`} {
		resp, body = postJSON(t, ts.url+"/tokenize", bad)
		require.True(t, resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity, "%s: %d %s", bad, resp.StatusCode, body)
		require.NotEmpty(t, teiErrorTypeOf(t, body))
	}
}
