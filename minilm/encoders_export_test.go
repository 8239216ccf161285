package minilm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
)

// exportGolden is what sentence-transformers computed from `embtune export`
// of a family's golden folder (tools/golden/run.sh encoders-export-golden):
// the digests of the files it loaded, and its vectors.
type exportGolden struct {
	Family         string            `json:"family"`
	Modules        []string          `json:"modules"`
	Files          map[string]string `json:"files"`
	TensorsSHA256  string            `json:"tensors_sha256"`
	Encode         [][]float64       `json:"encode"`
	EncodeQuery    [][]float64       `json:"encode_query"`
	EncodeDocument [][]float64       `json:"encode_document"`
}

func readExportGolden(t *testing.T, family string) exportGolden {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "testdata", "golden", "encoders-export", family+".json")
	b, err := os.ReadFile(path)
	require.NoError(t, err, "regenerate with tools/golden/run.sh encoders-export-golden bin/embtune")
	var g exportGolden
	require.NoError(t, json.Unmarshal(b, &g))
	return g
}

// tensorsDigest is sha256 over a safetensors file's tensors in name order:
// name, dtype, shape and raw bytes, each followed by a NUL, as
// tools/golden/encoders.py's tensors_digest computes it.
func tensorsDigest(t *testing.T, path string) string {
	t.Helper()
	tensors, _, err := hf.ReadSafetensors(path)
	require.NoError(t, err)
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		tt := tensors[name]
		dims := make([]string, len(tt.Shape))
		for i, d := range tt.Shape {
			dims[i] = strconv.FormatInt(d, 10)
		}
		for _, part := range [][]byte{[]byte(name), []byte(tt.DType), []byte(strings.Join(dims, ",")), tt.Data} {
			h.Write(part)
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func float32Rows(rows [][]float64) [][]float32 {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = make([]float32, len(r))
		for j, x := range r {
			out[i][j] = float32(x)
		}
	}
	return out
}

// TestEncoderFamiliesExportLoadsInSentenceTransformers: each family's
// exported folder is the one sentence-transformers loaded when the golden
// was made (the same files it reads, the same tensors by digest), and what
// sentence-transformers computed from that export is the family's golden
// vectors for encode, encode_query and encode_document, as embtune's own
// encode of the export is.
func TestEncoderFamiliesExportLoadsInSentenceTransformers(t *testing.T) {
	ctx := context.Background()
	for _, family := range testmodel.EncoderFamilies(t) {
		t.Run(family, func(t *testing.T) {
			eg := readExportGolden(t, family)
			require.Equal(t, family, eg.Family)
			require.NotEmpty(t, eg.Files)
			dir, g := testmodel.EncoderFolder(t, family)
			m, err := Load(ctx, dir, Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			out := filepath.Join(t.TempDir(), "export")
			require.NoError(t, m.SaveFolder(ctx, out))

			written := map[string]bool{}
			require.NoError(t, filepath.Walk(out, func(path string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() {
					return err
				}
				rel, err := filepath.Rel(out, path)
				if err != nil {
					return err
				}
				written[filepath.ToSlash(rel)] = true
				return nil
			}))
			for rel, sum := range eg.Files {
				if assert.True(t, written[rel], "%s is exported", rel) {
					assert.Equal(t, sum, fileSHA256(t, filepath.Join(out, filepath.FromSlash(rel))), "%s is the file sentence-transformers loaded", rel)
				}
			}
			for rel := range written {
				switch rel {
				case "model.safetensors", "embtune-export.json":
				default:
					_, ok := eg.Files[rel]
					assert.True(t, ok, "%s was not in the export sentence-transformers loaded", rel)
				}
			}
			assert.Equal(t, eg.TensorsSHA256, tensorsDigest(t, filepath.Join(out, "model.safetensors")),
				"the exported tensors are the ones sentence-transformers loaded")

			for _, c := range []struct {
				name     string
				st, gold [][]float64
			}{{"encode", eg.Encode, g.Encode}, {"encode_query", eg.EncodeQuery, g.EncodeQuery}, {"encode_document", eg.EncodeDocument, g.EncodeDocument}} {
				w := worstCosine(t, float32Rows(c.st), c.gold)
				t.Logf("sentence-transformers on the export, %s: worst cosine to the golden %.9f", c.name, w)
				assert.GreaterOrEqual(t, w, encoderCosine, c.name)
			}

			back, err := Load(ctx, out, Options{Threads: 1})
			require.NoError(t, err)
			defer back.Close()
			enc, err := back.Encode(ctx, g.Texts, 32)
			require.NoError(t, err)
			q, err := back.EncodeQueries(ctx, g.Texts, 32)
			require.NoError(t, err)
			d, err := back.EncodeDocuments(ctx, g.Texts, 32)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, worstCosine(t, enc, eg.Encode), encoderCosine, "embtune encode of the export")
			assert.GreaterOrEqual(t, worstCosine(t, q, eg.EncodeQuery), encoderCosine, "embtune encode_query of the export")
			assert.GreaterOrEqual(t, worstCosine(t, d, eg.EncodeDocument), encoderCosine, "embtune encode_document of the export")
		})
	}
}
