"""Random-weight sentence-transformers folders at the published sizes of
the encoder families, for measuring training memory (random weights use
the memory trained ones do). Nothing here is a golden; nothing is
committed. Usage (the golden venv):

  folders.py OUT_DIR FAMILY [LAYERS [VOCAB]]
  folders.py trim SRC_DIR OUT_DIR LAYERS      a real folder cut to its first LAYERS layers

FAMILY is one of the keys of CONFIGS. LAYERS and VOCAB, when given,
replace num_hidden_layers and vocab_size (to measure a model too large for
the machine in parts; see docs/families.md). The configs are the
published config.json values of the named checkpoints.

The tokenizer is all-MiniLM-L6-v2's WordPiece (vocabulary 30,522, pad id
0) for every family: the folders' token counts are WordPiece's, the
embedding tables have the real vocabulary's rows (ids stay below 30,522).
"""

import shutil
import sys
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

ROOT = Path(__file__).resolve().parents[2]
MINILM = ROOT / "third_party" / "models" / "all-MiniLM-L6-v2"


def modernbert_base():
    from transformers import ModernBertConfig

    # answerdotai/ModernBERT-base
    return ModernBertConfig(
        vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22,
        num_attention_heads=12, hidden_activation="gelu", max_position_embeddings=8192,
        norm_eps=1e-5, norm_bias=False, attention_bias=False, mlp_bias=False,
        global_rope_theta=160000.0, local_rope_theta=10000.0, local_attention=128,
        global_attn_every_n_layers=3, embedding_dropout=0.0, mlp_dropout=0.0,
        attention_dropout=0.0, pad_token_id=0, cls_token_id=101, sep_token_id=102,
        bos_token_id=101, eos_token_id=102)


def qwen3_embedding_06b():
    from transformers import Qwen3Config

    # Qwen/Qwen3-Embedding-0.6B
    return Qwen3Config(
        vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128, hidden_act="silu",
        max_position_embeddings=32768, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        attention_bias=False, attention_dropout=0.0, use_sliding_window=False,
        tie_word_embeddings=True, pad_token_id=0, bos_token_id=101, eos_token_id=102)


def embeddinggemma_300m():
    from transformers import Gemma3TextConfig

    # google/embeddinggemma-300m: 24 layers, five sliding-window layers then
    # one full, bidirectional.
    layers = 24
    return Gemma3TextConfig(
        vocab_size=262144, hidden_size=768, intermediate_size=1152, num_hidden_layers=layers,
        num_attention_heads=3, num_key_value_heads=1, head_dim=256,
        hidden_activation="gelu_pytorch_tanh", max_position_embeddings=2048, rms_norm_eps=1e-6,
        query_pre_attn_scalar=256, sliding_window=512,
        layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)],
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        use_bidirectional_attention=True, attn_logit_softcapping=None, final_logit_softcapping=None,
        attention_bias=False, attention_dropout=0.0, pad_token_id=0, bos_token_id=101, eos_token_id=102)


def multilingual_e5_small():
    from transformers import XLMRobertaConfig

    # intfloat/multilingual-e5-small (pad id 0 here: the WordPiece tokenizer's)
    return XLMRobertaConfig(
        vocab_size=250037, hidden_size=384, intermediate_size=1536, num_hidden_layers=12,
        num_attention_heads=12, hidden_act="gelu", max_position_embeddings=514, type_vocab_size=1,
        layer_norm_eps=1e-12, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        pad_token_id=0, bos_token_id=101, eos_token_id=102)


# family -> (config, pooling, Dense sizes after pooling)
CONFIGS = {
    "modernbert-base": (modernbert_base, "mean", []),
    "qwen3-embedding-0.6b": (qwen3_embedding_06b, "lasttoken", []),
    "embeddinggemma-300m": (embeddinggemma_300m, "mean", [(768, 3072), (3072, 768)]),
    "multilingual-e5-small": (multilingual_e5_small, "mean", []),
}


def main():
    from transformers import AutoModel

    out, name = Path(sys.argv[1]), sys.argv[2]
    config_of, pooling, dense = CONFIGS[name]
    config = config_of()
    if len(sys.argv) > 3:
        config.num_hidden_layers = int(sys.argv[3])
        if hasattr(config, "layer_types") and config.layer_types is not None:
            config.layer_types = config.layer_types[: config.num_hidden_layers]
    if len(sys.argv) > 4:
        config.vocab_size = int(sys.argv[4])
    if out.exists():
        shutil.rmtree(out)
    hf_dir = out.with_name(out.name + "-hf")
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(hf_dir)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(MINILM / f, hf_dir / f)
    modules = [Transformer(str(hf_dir), max_seq_length=128)]
    modules.append(Pooling(config.hidden_size, pooling_mode=pooling))
    for i, o in dense:
        modules.append(Dense(i, o, bias=False, activation_function=torch.nn.Identity()))
    modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    shutil.rmtree(hf_dir)
    n = sum(p.numel() for p in modules[0].parameters())
    print(f"{out}: {config.num_hidden_layers} layers, vocabulary {config.vocab_size}, {n} transformer parameters")


def trim(src, out, layers):
    """Copies the sentence-transformers folder src to out with only its
    first `layers` encoder layers (config.json and model.safetensors)."""
    import json
    import re

    from safetensors.torch import load_file, save_file

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out)
    config = json.loads((out / "config.json").read_text())
    config["num_hidden_layers"] = layers
    (out / "config.json").write_text(json.dumps(config, indent=2))
    weights = load_file(str(out / "model.safetensors"))
    keep = {}
    for name, t in weights.items():
        m = re.search(r"layers?\.(\d+)\.", name)
        if m is None or int(m.group(1)) < layers:
            keep[name] = t.contiguous()
    save_file(keep, str(out / "model.safetensors"), metadata={"format": "pt"})
    print(f"{out}: {layers} layers, {sum(t.numel() for t in keep.values())} parameters")


if __name__ == "__main__":
    if sys.argv[1] == "trim":
        trim(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
