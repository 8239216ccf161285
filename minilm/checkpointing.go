package minilm

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/embtune/embtune/torch"
)

// Gradient checkpointing (transformers' gradient_checkpointing): each
// encoder layer keeps only its input during training's forward pass and
// recomputes its activations in the backward pass (torch/checkpoint.cpp),
// so activation memory holds one layer's graph at a time instead of all of
// them, for about one more forward pass of compute. Dropout replays the
// same masks (the generator state is saved per layer), so a step equals
// the step without it.
//
// Every family's source calls its layers on lines of the form
//
//	x = self.layer(ARGS)
//
// with every weight of the layer among ARGS; checkpointed rewrites them to
// embtune.checkpoint(self, "layer", (ARGS)), which runs self.layer(ARGS)
// with the tensors among ARGS as the inputs gradients flow to.

var layerCallRE = regexp.MustCompile(`(?m)^(\s+x = )self\.layer\((.*)\)$`)

// checkpointed rewrites a family's source so that its layers run through
// embtune.checkpoint; it fails unless it finds exactly one call per layer.
func checkpointed(src string, layers int) (string, error) {
	if n := len(layerCallRE.FindAllStringIndex(src, -1)); n != layers {
		return "", fmt.Errorf("gradient checkpointing: the encoder source calls self.layer on %d lines, want one per layer (%d)", n, layers)
	}
	return layerCallRE.ReplaceAllString(src, `${1}embtune.checkpoint(self, "layer", (${2}))`), nil
}

// SetGradientCheckpointing turns gradient checkpointing of the encoder's
// layers on or off: the module is compiled again over the same parameter
// tensors, so an optimizer built on them before or after keeps working.
// Inference (no autograd) runs as without it. Exports are unaffected: they
// compile their own module from stock operators. Use it only inside
// Worker().Do.
func (m *Model) SetGradientCheckpointing(on bool) error {
	if on == m.checkpointing {
		return nil
	}
	if m.quant != NoQuantization {
		return errors.New("gradient checkpointing needs the float encoder, not a quantized one")
	}
	src := m.fam.source(m.Folder.Config, headOf(m.Folder), m.device == torch.CPU)
	if on {
		var err error
		if src, err = checkpointed(src, m.Folder.Config.NumHiddenLayers); err != nil {
			return err
		}
	}
	mod, err := m.module.Redefine("MiniLM", src)
	if err != nil {
		return fmt.Errorf("compile encoder (gradient checkpointing %v): %w", on, err)
	}
	m.module.Close()
	m.module, m.checkpointing = mod, on
	return nil
}

// GradientCheckpointing says whether the encoder's layers are checkpointed.
func (m *Model) GradientCheckpointing() bool { return m.checkpointing }
