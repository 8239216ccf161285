package minilm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/exportset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// SaveTorchScript writes the encoder as a TorchScript archive, atomically.
// Python runs it as torch.jit.load(path)(input_ids, attention_mask) and gets
// the sentence embeddings; its parameters keep their Hugging Face names with
// "." spelled "__".
func (m *Model) SaveTorchScript(ctx context.Context, path string) error {
	return m.worker.Do(ctx, func() error {
		mod, err := m.exportModule()
		if err != nil {
			return err
		}
		defer mod.Close()
		return atomicfile.WriteVia(path, mod.Save)
	})
}

// exportModule compiles the encoder from stock operators only, on the CPU
// and in eval mode, with copies of the current parameters: the training
// module may call embtune's own operators (torch/ops.cpp), which a plain
// libtorch or PyTorch cannot load. Runs on the worker.
func (m *Model) exportModule() (*torch.Module, error) {
	if err := m.floatOnly("export"); err != nil {
		return nil, err
	}
	params, err := m.module.NamedParameters()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range params {
			p.Tensor.Close()
		}
	}()
	mod, err := torch.NewModule("MiniLM")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*torch.Module, error) {
		mod.Close()
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, p := range params {
		cpu, err := p.Tensor.To(torch.CPU, torch.Float32)
		if err != nil {
			return fail(err)
		}
		err = mod.RegisterParameter(p.Name, cpu, false)
		cpu.Close()
		if err != nil {
			return fail(err)
		}
	}
	if err := mod.Define(m.fam.source(m.Folder.Config, headOf(m.Folder), false)); err != nil {
		return fail(err)
	}
	if err := mod.Train(false); err != nil {
		return fail(err)
	}
	return mod, nil
}

// Weights returns every tensor of the model under its Hugging Face name: the
// encoder's current parameters (float32, on the CPU) and the stored tensors
// the encoder does not use.
func (m *Model) Weights(ctx context.Context) (map[string]hf.RawTensor, error) {
	if err := m.floatOnly("reading the weights"); err != nil {
		return nil, err
	}
	out := make(map[string]hf.RawTensor, len(m.passthrough)+64)
	for k, v := range m.passthrough {
		out[k] = v
	}
	err := m.worker.Do(ctx, func() error {
		params, err := m.module.NamedParameters()
		if err != nil {
			return err
		}
		defer func() {
			for _, p := range params {
				p.Tensor.Close()
			}
		}()
		for _, p := range params {
			shape, err := p.Tensor.Shape()
			if err != nil {
				return err
			}
			cpu, err := p.Tensor.To(torch.CPU, torch.Float32)
			if err != nil {
				return err
			}
			data, err := cpu.Bytes()
			cpu.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			out[hfName(p.Name)] = hf.RawTensor{DType: hf.F32, Shape: shape, Data: data}
		}
		return nil
	})
	return out, err
}

// folderFiles are copied verbatim from the source folder by SaveFolder.
var folderFiles = []string{
	"config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
	"README.md", "1_Pooling/config.json",
}

// configFiles are the configuration and tokenizer files SaveFolder copies:
// folderFiles plus the head's own (Pooling, Dense and Normalize configs
// wherever modules.json put them).
func (m *Model) configFiles() []string {
	names := append([]string(nil), folderFiles...)
	if p := m.Folder.PoolingPath; p != "" && p != "1_Pooling" {
		names = append(names, p+"/config.json")
	}
	for _, d := range m.Folder.Dense {
		names = append(names, d.Path+"/config.json")
	}
	if p := m.Folder.NormalizePath; p != "" {
		names = append(names, p+"/config.json")
	}
	return names
}

// SaveFolder writes a complete sentence-transformers folder to dir: the
// current weights as model.safetensors plus the configuration and tokenizer
// files of the folder the model was loaded from. sentence-transformers loads
// it as SentenceTransformer(dir). The files are written as one set (see
// package exportset): a crash half way leaves a folder that Load refuses.
func (m *Model) SaveFolder(ctx context.Context, dir string) error {
	return m.saveSet(ctx, dir, false)
}

// SaveFolderWithTorchScript is SaveFolder with the TorchScript encoder as
// dir/model.pt in the same set.
func (m *Model) SaveFolderWithTorchScript(ctx context.Context, dir string) error {
	return m.saveSet(ctx, dir, true)
}

func (m *Model) saveSet(ctx context.Context, dir string, torchScript bool) error {
	weights, err := m.Weights(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save folder: %w", err)
	}
	if _, err := RemoveStaleTemps(dir); err != nil {
		return err
	}
	if err := exportset.Begin(dir); err != nil {
		return err
	}
	// Dense modules' tensors go back to their own folders' safetensors.
	files := map[string]map[string]hf.RawTensor{"model.safetensors": weights}
	for name, t := range weights {
		if path, tensor, ok := splitDenseParam(name); ok {
			file := path + "/model.safetensors"
			if files[file] == nil {
				files[file] = map[string]hf.RawTensor{}
			}
			files[file][tensor] = t
			delete(weights, name)
		}
	}
	var written []string
	for file, tensors := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, file)), 0o755); err != nil {
			return fmt.Errorf("save folder: %w", err)
		}
		if err := hf.WriteSafetensors(filepath.Join(dir, file), tensors, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		written = append(written, file)
	}
	for _, name := range m.configFiles() {
		src := filepath.Join(m.Folder.Dir, name)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := copyFile(src, filepath.Join(dir, name)); err != nil {
			return err
		}
		written = append(written, name)
	}
	if torchScript {
		if err := m.SaveTorchScript(ctx, filepath.Join(dir, "model.pt")); err != nil {
			return err
		}
		written = append(written, "model.pt")
	}
	return exportset.Finish(dir, written)
}

// RemoveStaleTemps removes the temporary files that a killed export or
// training run left in a model folder (up to the weights' size each), and
// returns their paths.
func RemoveStaleTemps(dir string) ([]string, error) {
	var removed []string
	names := append([]string{"model.safetensors", "model.pt", exportset.RecordName, "eval.json", "loss.svg"}, folderFiles...)
	for _, name := range names {
		r, err := atomicfile.RemoveStale(filepath.Join(dir, name))
		removed = append(removed, r...)
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// SetWeights copies tensors, by Hugging Face name, into the encoder's
// parameters (a checkpoint restore). Every encoder parameter must be present
// with its exact shape; names the encoder does not use are ignored.
func (m *Model) SetWeights(ctx context.Context, weights map[string]hf.RawTensor) error {
	if err := m.floatOnly("setting the weights"); err != nil {
		return err
	}
	return m.worker.Do(ctx, func() error {
		params, err := m.module.NamedParameters()
		if err != nil {
			return err
		}
		defer func() {
			for _, p := range params {
				p.Tensor.Close()
			}
		}()
		for _, p := range params {
			raw, ok := weights[hfName(p.Name)]
			if !ok {
				return fmt.Errorf("set weights: missing %s", hfName(p.Name))
			}
			t, err := tensorOf(raw)
			if err != nil {
				return fmt.Errorf("set weights: %s: %w", hfName(p.Name), err)
			}
			err = p.Tensor.CopyFrom(t)
			t.Close()
			if err != nil {
				return fmt.Errorf("set weights: %s: %w", hfName(p.Name), err)
			}
		}
		return nil
	})
}
