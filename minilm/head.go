package minilm

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// The head is what runs after the transformer: sentence-transformers'
// Pooling (every mode, concatenated in the folder's order), its Dense
// modules and an optional Normalize, generated into the same TorchScript
// forward as the encoder so that training backpropagates through it.

// head is the part of a folder the head source depends on.
type head struct {
	modes     []string
	dense     []hf.Dense
	normalize bool
}

func headOf(f hf.Folder) head {
	return head{modes: f.Pooling.Modes, dense: f.Dense, normalize: f.Normalize}
}

// meanHead is all-MiniLM-L6-v2's head: mean pooling, then Normalize or not.
func meanHead(normalize bool) head { return head{modes: []string{hf.PoolMean}, normalize: normalize} }

// check refuses a head that writeHead cannot generate (hf.ReadFolder
// refuses these already; a Folder built by hand might not be).
func (hd head) check() error {
	if len(hd.modes) == 0 {
		return fmt.Errorf("no pooling mode")
	}
	for _, m := range hd.modes {
		switch m {
		case hf.PoolCLS, hf.PoolMax, hf.PoolMean, hf.PoolMeanSqrtLen, hf.PoolWeightedMean, hf.PoolLastToken:
		default:
			return fmt.Errorf("unknown pooling mode %q", m)
		}
	}
	for _, d := range hd.dense {
		switch d.Activation {
		case hf.ActIdentity, hf.ActTanh, hf.ActReLU, hf.ActSigmoid, hf.ActGELU:
		default:
			return fmt.Errorf("Dense %s: unknown activation %q", d.Path, d.Activation)
		}
	}
	return nil
}

// denseParamPrefix marks a Dense module's parameters among the encoder's:
// "_st.2_Dense.linear.weight" is 2_Dense/model.safetensors' linear.weight.
// Hugging Face names never start with "_st.", so the export can split them
// off again.
const denseParamPrefix = "_st."

var densePathRE = regexp.MustCompile(`^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$`)

// denseParam is the Hugging Face-style name of a Dense module's tensor
// ("weight" or "bias").
func denseParam(d hf.Dense, which string) string {
	return denseParamPrefix + d.Path + ".linear." + which
}

// splitDenseParam returns the Dense folder and the tensor's name inside its
// safetensors file, for a name made by denseParam.
func splitDenseParam(name string) (path, tensor string, ok bool) {
	rest, ok := strings.CutPrefix(name, denseParamPrefix)
	if !ok {
		return "", "", false
	}
	path, tensor, ok = strings.Cut(rest, ".")
	return path, tensor, ok
}

// registerDense reads each Dense module's safetensors and registers its
// linear layer as float32 parameters of mod.
func registerDense(mod *torch.Module, dir string, dense []hf.Dense) error {
	for _, d := range dense {
		if !densePathRE.MatchString(d.Path) {
			return fmt.Errorf("Dense module folder %q: want letters, digits and single underscores", d.Path)
		}
		file, err := d.WeightsFile(dir)
		if err != nil {
			return err
		}
		weights, _, err := hf.ReadSafetensors(file)
		if err != nil {
			return err
		}
		want := map[string][]int64{"linear.weight": {int64(d.OutFeatures), int64(d.InFeatures)}}
		if d.Bias {
			want["linear.bias"] = []int64{int64(d.OutFeatures)}
		}
		for name, shape := range want {
			raw, ok := weights[name]
			switch {
			case !ok:
				return fmt.Errorf("%s: missing %s", file, name)
			case !equalShape(raw.Shape, shape):
				return fmt.Errorf("%s: %s has shape %v, 2_Dense/config.json needs %v", file, name, raw.Shape, shape)
			case raw.DType != hf.F32 && raw.DType != hf.F16 && raw.DType != hf.BF16:
				return fmt.Errorf("%s: %s has dtype %s, want a float type", file, name, raw.DType)
			}
			if i := firstNonFinite(raw); i >= 0 {
				return fmt.Errorf("%s: %s has a non-finite value (NaN or Inf) at element %d", file, name, i)
			}
		}
		for _, which := range []string{"weight", "bias"} {
			if raw, ok := weights["linear."+which]; ok && (which == "weight" || d.Bias) {
				if err := registerFloat32(mod, denseParam(d, which), raw); err != nil {
					return fmt.Errorf("%s: %w", filepath.Base(file), err)
				}
			}
		}
	}
	return nil
}

// writeHead writes the lines of forward that turn the float32 token
// states x into the sentence embedding "pooled", as sentence-transformers'
// Pooling (_forward_flattened when packed, _forward_padded otherwise),
// Dense and Normalize do. packed: x is the batch's real tokens [T, H] and
// idx their flat positions in [B*S]; else x is [B, S, H]. Batches are
// right-padded, so every row's first real token is at position 0.
func writeHead(w func(string, ...any), h int, hd head, packed bool) {
	var parts []string
	if packed {
		w("    b = input_ids.size(0)")
		w("    row = torch.div(idx, input_ids.size(1), rounding_mode=\"floor\")")
		w("    cnt = (attention_mask > 0).long().sum(1)")
	} else {
		w("    m = attention_mask.unsqueeze(-1).float()")
		w("    cnt = (attention_mask > 0).long().sum(1)")
	}
	sumDone := false
	sum := func() {
		if sumDone {
			return
		}
		sumDone = true
		if packed {
			w("    n = torch.clamp(attention_mask.float().sum(1, keepdim=True), min=1e-9)")
			w("    total = x.new_zeros([b, %d]).index_add(0, row, x)", h)
		} else {
			w("    n = torch.clamp(m.sum(1), min=1e-9)")
			w("    total = (x * m).sum(1)")
		}
	}
	for i, mode := range hd.modes {
		v := fmt.Sprintf("p%d", i)
		parts = append(parts, v)
		switch mode {
		case hf.PoolMean:
			sum()
			w("    %s = total / n", v)
		case hf.PoolMeanSqrtLen:
			sum()
			w("    %s = total / n.sqrt()", v)
		case hf.PoolMax:
			if packed {
				w("    %s = x.new_full([b, %d], float(\"-inf\")).scatter_reduce(0, row.unsqueeze(1).expand(-1, %d), x, \"amax\")", v, h, h)
			} else {
				w("    %s = x.masked_fill(m == 0.0, float(\"-inf\")).amax(1)", v)
			}
		case hf.PoolCLS:
			if packed {
				w("    %s = x.index_select(0, torch.cumsum(cnt, 0) - cnt)", v)
			} else {
				w("    %s = x.select(1, 0)", v)
			}
		case hf.PoolLastToken:
			if packed {
				w("    %s = x.index_select(0, torch.cumsum(cnt, 0) - 1)", v)
			} else {
				w("    %s = torch.gather(x, 1, (cnt - 1).view(-1, 1, 1).expand(-1, 1, %d)).squeeze(1)", v, h)
			}
		case hf.PoolWeightedMean:
			// Position weights 1, 2, ... from each text's first token.
			if packed {
				w("    wt%d = (torch.remainder(idx, input_ids.size(1)) + 1).float().unsqueeze(1)", i)
				w("    %s = x.new_zeros([b, %d]).index_add(0, row, x * wt%d) / torch.clamp(x.new_zeros([b, 1]).index_add(0, row, wt%d), min=1e-9)", v, h, i, i)
			} else {
				w("    wt%d = m * torch.arange(1, x.size(1) + 1, device=x.device).float().view(1, -1, 1)", i)
				w("    %s = (x * wt%d).sum(1) / torch.clamp(wt%d.sum(1), min=1e-9)", v, i, i)
			}
		default: // check refuses these first; this line does not compile
			w("    %s = unsupported_pooling_mode_%s", v, mode)
		}
	}
	if len(parts) == 1 {
		w("    pooled = %s", parts[0])
	} else {
		w("    pooled = torch.cat([%s], 1)", strings.Join(parts, ", "))
	}
	for _, d := range hd.dense {
		lin := fmt.Sprintf("torch.linear(pooled, self.%s)", jitName(denseParam(d, "weight")))
		if d.Bias {
			lin = fmt.Sprintf("torch.linear(pooled, self.%s, self.%s)", jitName(denseParam(d, "weight")), jitName(denseParam(d, "bias")))
		}
		switch d.Activation {
		case hf.ActIdentity:
			w("    pooled = %s", lin)
		case hf.ActTanh:
			w("    pooled = torch.tanh(%s)", lin)
		case hf.ActReLU:
			w("    pooled = torch.relu(%s)", lin)
		case hf.ActSigmoid:
			w("    pooled = torch.sigmoid(%s)", lin)
		case hf.ActGELU:
			w("    pooled = torch.gelu(%s)", lin)
		default: // check refuses these first; this line does not compile
			w("    pooled = unsupported_activation_%s", d.Activation)
		}
	}
	if hd.normalize {
		w("    norm = torch.clamp(pooled.pow(2).sum(-1, keepdim=True).sqrt(), min=1e-12)")
		w("    pooled = pooled / norm")
	}
	w("    return pooled")
}
