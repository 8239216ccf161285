"""Golden token ids for every kind of tokenizer.json embtune reads.

Writes under testdata/tokenizers/:
  corpus.jsonl.gz          the texts (multilingual, edge cases, texts past max_seq_length)
  KIND.tokenizer.json.gz   the tokenizers trained here (pinned: they are goldens too)
  KIND.jsonl.gz            per text: {"ids": encode(text).ids,
                           "st": ids with sentence-transformers' strip() and truncation
                           at max_seq_length, only where they differ from "ids"}
  kinds.json               every kind: where its tokenizer.json is, its sha256, max_seq_length

The real tokenizers come from third_party/tokenizers (tools/fetch-tokenizers.sh)
and third_party/models; the BERT folder re-saved by sentence-transformers is
saved here and pinned like the trained ones.

  left-truncation.jsonl.gz per kind and text that truncation cuts: the ids of
                           enable_truncation(max_seq_length, direction="left") on
                           the stripped text (TEI's truncation_direction "Left")

Usage: python tokenizer_kinds.py REPO_ROOT        everything above
       python tokenizer_kinds.py REPO_ROOT left   left-truncation.jsonl.gz only, from the
                                                  stored corpus, kinds.json and tokenizers
"""
import gzip
import hashlib
import json
import os
import random
import sys
import tempfile

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

N_TEXTS = 2200

# Phrases per script; texts are built by mixing them with noise.
PHRASES = {
    "en": ["The quick brown fox jumps over the lazy dog.", "How do I configure the network interface?",
           "It's a well-known fact that they've been there, and we'll see.", "Don't stop believing!",
           "Machine learning models need careful evaluation.", "Prices rose 3.5% in Q3 2024 (vs. 2.1%).",
           "Email me at first.last@example.com or visit https://example.org/path?q=1&r=2.",
           "UPPER CASE and MiXeD CaSe words", "user_name = get_user(id=42)  # look up"],
    "de": ["Größere Übungen für Äpfel und Öfen.", "Straße, Maß und Fuß."],
    "fr": ["L'été dernier, nous sommes allés à la plage.", "Ça coûte très cher, n'est-ce pas ?"],
    "es": ["¿Dónde está la biblioteca? ¡Allí!", "El niño comió piña."],
    "vi": ["Tiếng Việt có nhiều dấu thanh điệu.", "Xin chào, bạn khỏe không?"],
    "ru": ["Съешь же ещё этих мягких французских булок.", "Привет, как дела?"],
    "el": ["Γειά σου Κόσμε! Ελληνικά γράμματα.", "ΣΊΣΥΦΟΣ και σίσυφος"],
    "zh": ["我们今天去公园散步吧。", "机器学习是人工智能的一个分支。", "北京是中华人民共和国的首都。"],
    "ja": ["東京は日本の首都です。", "ひらがなとカタカナ、カタカナ語もあります。", "ｶﾀｶﾅ半角もある。"],
    "ko": ["안녕하세요, 만나서 반갑습니다.", "한국어 자연어 처리"],
    "th": ["ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", "สวัสดีครับ ยินดีต้อนรับ"],
    "ar": ["مرحبا بالعالم، كيف حالك؟", "اللغة العربية تكتب من اليمين إلى اليسار."],
    "he": ["שלום עולם, מה שלומך?"],
    "hi": ["नमस्ते दुनिया, आप कैसे हैं?", "हिन्दी देवनागरी लिपि में लिखी जाती है।"],
    "bn": ["আমি বাংলায় গান গাই।"],
    "ta": ["தமிழ் ஒரு பழமையான மொழி."],
    "emoji": ["I love 🍕 and 🍣!", "Family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵 skin: 👍🏽 keycap: 1️⃣",
              "❤️‍🔥 🏳️‍🌈 🫠 🧑🏿‍💻"],
    "marks": ["e\u0301te\u0301 (combining acute)", "Z\u0351\u0342a\u036b\u0322l\u0315g\u0358o\u0327",
              "a\u0308o\u0308u\u0308 A\u030a", "\u0915\u094d\u0937 \u0e01\u0e34\u0e4d"],
    "spaces": ["no\u00a0break\u00a0space", "thin\u2009space and\u202fnarrow", "ideographic\u3000space",
               "em\u2003en\u2002figure\u2007", "line\u2028sep\u2029para", "tab\there\nnewline\r\nCRLF",
               "  leading and trailing  ", "many     spaces\t\t\ttabs"],
    "control": ["zero\u200bwidth\u200cjoin\u200dchars", "bom\ufefftext", "soft\u00adhyphen",
                "ctrl\x01\x02\x07\x1b[0m\x7f", "nul\x00byte", "info\x1c\x1d\x1e\x1fsep",
                "bidi\u202eoverride\u202c", "replacement \ufffd char"],
    "wide": ["ＦＵＬＬＷＩＤＴＨ　ｌｅｔｔｅｒｓ １２３", "ligature ﬁne ﬂow", "circled ①②③ ⓐⓑ",
             "math 𝐀𝐁𝐂 𝒳 ℌ", "roman Ⅻ ⅻ", "½ ¼ ² ³ ™ ℃ № ㎏"],
    "digits": ["1234567890", "3.14159 2.71828 1e-10", "١٢٣ ٤٥٦ (Arabic-Indic)", "१२३ (Devanagari digits)",
               "phone +1 (555) 123-4567", "v1.2.3-rc.4"],
    "code": ["def f(x):\n    return x ** 2  # square", "SELECT * FROM t WHERE a <> 'b';",
             "if (a && b || !c) { x += 1; }", "<div class=\"a\">text</div>", "$HOME/~user/path\\to\\file"],
    "specials": ["[CLS] text [SEP] more [MASK] end", "<s> start </s> <pad> <unk> <mask>",
                 "<|endoftext|> and <|im_start|>user", "a [MASK]b and  [MASK]  c", "xyzzy word xyzzy_no axyzzy",
                 "|||EMAIL_ADDRESS||| here", "Tab<sep2>   after", "<start_of_turn>model"],
}

NOISE = ["", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u200b", "!", "?", "...", "-", "'s", "—", "“", "”",
         "«", "»", "€", "$", "%", "&", "@", "#", "_", "~", "^", "|", "\\", "/", "©", "®", "°", "±", "·"]


def make_corpus():
    rng = random.Random(20261207)
    keys = sorted(PHRASES)
    texts = []
    # Every phrase alone, then in all-caps and lower-case.
    for k in keys:
        for p in PHRASES[k]:
            texts += [p, p.upper(), p.lower()]
    texts += ["", " ", "a", "A", ".", "\u2581", "\u0120", "<0x41>", "##ing", "▁hello", "Ġworld"]
    # Very long words and texts past max_seq_length.
    texts.append("a" * 150)
    texts.append("Pneumonoultramicroscopicsilicovolcanoconiosis" * 4)
    texts.append("漢字" * 300)
    texts.append("ab" * 700)
    texts.append(" ".join(rng.choice(PHRASES["en"]) for _ in range(120)))
    texts.append(" ".join(rng.choice(PHRASES[rng.choice(keys)]) for _ in range(200)))
    while len(texts) < N_TEXTS:
        n = rng.choice([1, 1, 2, 2, 3, 4, 6, 10, 40])
        parts = []
        for _ in range(n):
            k = rng.choice(keys)
            p = rng.choice(PHRASES[k])
            r = rng.random()
            if r < 0.1:
                p = p.upper()
            elif r < 0.2:
                p = p.lower()
            elif r < 0.3:
                # cut at a random character
                i, j = sorted(rng.sample(range(len(p) + 1), 2)) if len(p) > 1 else (0, len(p))
                p = p[i:j]
            parts.append(p)
            parts.append(rng.choice(NOISE))
        texts.append(rng.choice(["", " ", ""]).join(parts) if rng.random() < 0.2 else " ".join(parts))
    return texts


def write_gz_lines(path, rows):
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        for r in rows:
            f.write((json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n").encode())


def byte_tokens():
    return ["<0x%02X>" % b for b in range(256)]


def add_byte_fallback_bpe(tok):
    """Appends <0x00>..<0xFF> to a trained BPE vocab and turns byte_fallback on."""
    d = json.loads(tok.to_str())
    vocab = d["model"]["vocab"]
    for t in byte_tokens():
        if t not in vocab:
            vocab[t] = len(vocab) + len(d["added_tokens"])
    d["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(d))


def train(texts, tok, trainer):
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def trained_kinds(texts):
    """name -> (Tokenizer, max_seq_length), each built like the family it names."""
    kinds = {}

    # GPT-2: byte-level BPE with the GPT-2 regex inside ByteLevel.
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    t.decoder = decoders.ByteLevel()
    train(texts, t, trainers.BpeTrainer(vocab_size=3000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                        special_tokens=["<|endoftext|>"], show_progress=False))
    kinds["gpt2-bytelevel-bpe"] = (t, 128)

    # Qwen2/3: NFC, the Qwen2 Split regex, ByteLevel without its own regex,
    # ignore_merges, "$A <|endoftext|>".
    t = Tokenizer(models.BPE(ignore_merges=True))
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    train(texts, t, trainers.BpeTrainer(vocab_size=3000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                        show_progress=False))
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="$A <|endoftext|>", special_tokens=[
            ("<|endoftext|>", t.token_to_id("<|endoftext|>"))])])
    kinds["qwen-bytelevel-bpe"] = (t, 128)

    # Llama 2 / SentencePiece BPE: Prepend + Replace(' ', '▁'), no
    # pre-tokenizer, byte_fallback, fused unk, "<s> $A".
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    train(texts[:600], t, trainers.BpeTrainer(vocab_size=1500, limit_alphabet=150,
                                              special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    t = add_byte_fallback_bpe(t)
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    kinds["llama-sp-bpe"] = (t, 128)

    # Gemma: Metaspace(prepend_scheme="first", split=False), byte_fallback,
    # "<bos> $A", chat-turn added tokens.
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    train(texts[:600], t, trainers.BpeTrainer(vocab_size=1500, limit_alphabet=150,
                                              special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
                                              show_progress=False))
    t = add_byte_fallback_bpe(t)
    t.add_special_tokens(["<start_of_turn>", "<end_of_turn>"])
    t.post_processor = processors.TemplateProcessing(single="<bos> $A",
                                                     special_tokens=[("<bos>", t.token_to_id("<bos>"))])
    kinds["gemma-metaspace-bpe"] = (t, 128)

    # ModernBERT: byte-level BPE, "[CLS] $A [SEP]", [MASK] with lstrip, and
    # non-special added tokens (normalized, single_word, rstrip).
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    t.decoder = decoders.ByteLevel()
    train(texts, t, trainers.BpeTrainer(vocab_size=3000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                        special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"], show_progress=False))
    t.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=False, normalized=False, special=True)])
    t.add_tokens([AddedToken("|||EMAIL_ADDRESS|||", normalized=True, special=False),
                  AddedToken("    ", normalized=False, special=False),
                  AddedToken("xyzzy", single_word=True, normalized=False, special=False),
                  AddedToken("<sep2>", rstrip=True, normalized=False, special=False)])
    t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))])
    kinds["modernbert-bytelevel-bpe"] = (t, 128)

    # T5-style Unigram: NFKC, collapse spaces, Metaspace always, byte_fallback, "$A </s>".
    t = Tokenizer(models.Unigram())
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    # The Unigram trainer's likelihood turns NaN on the corpus's odd texts:
    # it learns from the phrases alone.
    train([p for k in sorted(PHRASES) for p in PHRASES[k]] * 3, t, trainers.UnigramTrainer(vocab_size=2000, special_tokens=["<pad>", "</s>", "<unk>"],
                                            unk_token="<unk>", max_piece_length=8, show_progress=False))
    d = json.loads(t.to_str())
    have = {p for p, _ in d["model"]["vocab"]}
    low = min(s for _, s in d["model"]["vocab"]) - 1.0
    d["model"]["vocab"] += [[b, low] for b in byte_tokens() if b not in have]
    d["model"]["byte_fallback"] = True
    t = Tokenizer.from_str(json.dumps(d))
    t.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", t.token_to_id("</s>"))])
    kinds["t5-unigram-bytefallback"] = (t, 128)

    # WordPiece through the other normalizers and pre-tokenizers, RobertaProcessing.
    t = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=30))
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                         normalizers.Strip(left=True, right=True)])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                               pre_tokenizers.Punctuation(behavior="contiguous"),
                                               pre_tokenizers.Digits(individual_digits=True)])
    train(texts, t, trainers.WordPieceTrainer(vocab_size=2500, special_tokens=["[UNK]", "<s>", "</s>", "<pad>"],
                                              show_progress=False))
    t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")),
                                                    ("<s>", t.token_to_id("<s>")))
    kinds["wordpiece-nfd-punct-digits"] = (t, 128)

    # WordPiece after NFKC/NFKD, Whitespace and every Split behavior.
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.NFKC(), normalizers.Strip(left=False, right=True)])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[,.;:]"), behavior="merged_with_previous"),
        pre_tokenizers.Split("!", behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"\p{N}+"), behavior="isolated", invert=True),
        pre_tokenizers.Split("-", behavior="merged_with_next"),
        pre_tokenizers.Punctuation(behavior="merged_with_next"),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Whitespace(),
        pre_tokenizers.Metaspace(replacement="_", prepend_scheme="never", split=True)])
    train(texts, t, trainers.WordPieceTrainer(vocab_size=2500, special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                              show_progress=False))
    t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")),
                                                 ("[CLS]", t.token_to_id("[CLS]")))
    kinds["wordpiece-split-behaviors"] = (t, 128)

    # BPE with continuing_subword_prefix and end_of_word_suffix, merges in
    # the legacy "a b" form, BertPreTokenizer, a Sequence post-processor.
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.NFC()])
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    train(texts, t, trainers.BpeTrainer(vocab_size=3000, limit_alphabet=300, continuing_subword_prefix="##",
                                        end_of_word_suffix="</w>", special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                        show_progress=False))
    t.post_processor = processors.Sequence([
        processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
            ("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))]),
        processors.ByteLevel(trim_offsets=False)])
    kinds["bpe-suffix-legacy-merges"] = (t, 128)
    return kinds


def st_resaved_bert(root, tmp):
    """all-MiniLM-L6-v2 saved again by sentence-transformers: its
    tokenizer.json then has Sequence[Lowercase, BertNormalizer]."""
    from sentence_transformers import SentenceTransformer
    src = os.path.join(root, "third_party/models/all-MiniLM-L6-v2")
    # BGE and E5 folders set sentence_bert_config's do_lower_case; ST 6.2
    # then puts a Lowercase normalizer in front of the tokenizer's own.
    folder = os.path.join(tmp, "lower")
    os.makedirs(folder)
    for name in os.listdir(src):
        os.symlink(os.path.join(src, name), os.path.join(folder, name))
    os.remove(os.path.join(folder, "sentence_bert_config.json"))
    with open(os.path.join(src, "sentence_bert_config.json")) as f:
        cfg = json.load(f)
    cfg["do_lower_case"] = True
    with open(os.path.join(folder, "sentence_bert_config.json"), "w") as f:
        json.dump(cfg, f)
    m = SentenceTransformer(folder, device="cpu")
    out = os.path.join(tmp, "st-resaved")
    m.save(out)
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        d = json.load(f)
    if d["normalizer"]["type"] != "Sequence":
        print("tokenizers: note: ST did not write a Sequence normalizer: %s" % d["normalizer"]["type"], file=sys.stderr)
    return Tokenizer.from_file(os.path.join(out, "tokenizer.json"))


LEGACY_MERGES = {"bpe-suffix-legacy-merges"}

REAL = {
    # name: (path under the repo root, max_seq_length of the model)
    "minilm-wordpiece": ("third_party/models/all-MiniLM-L6-v2/tokenizer.json", 256),
    "bge-small-en-v1.5": ("third_party/tokenizers/bge-small-en-v1.5/tokenizer.json", 512),
    "e5-small-v2": ("third_party/tokenizers/e5-small-v2/tokenizer.json", 512),
    "bge-small-zh-v1.5": ("third_party/tokenizers/bge-small-zh-v1.5/tokenizer.json", 512),
    "all-mpnet-base-v2": ("third_party/tokenizers/all-mpnet-base-v2/tokenizer.json", 384),
    "multilingual-e5-small": ("third_party/tokenizers/multilingual-e5-small/tokenizer.json", 512),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def golden_rows(tok, texts, max_len):
    tok = Tokenizer.from_str(tok.to_str())
    tok.no_padding()
    tok.no_truncation()
    full = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
    trunc = Tokenizer.from_str(tok.to_str())
    trunc.no_padding()
    trunc.enable_truncation(max_len)
    st = [e.ids for e in trunc.encode_batch([t.strip() for t in texts], add_special_tokens=True)]
    rows = []
    for a, b in zip(full, st):
        r = {"ids": a}
        if a != b:
            r["st"] = b
        rows.append(r)
    return rows


def main():
    root = sys.argv[1]
    out = os.path.join(root, "testdata", "tokenizers")
    os.makedirs(out, exist_ok=True)
    texts = make_corpus()
    write_gz_lines(os.path.join(out, "corpus.jsonl.gz"), [{"text": t} for t in texts])
    meta = {"tokenizers_version": __import__("tokenizers").__version__, "texts": len(texts), "kinds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        pinned = trained_kinds(texts)
        pinned["bert-st-resaved"] = (st_resaved_bert(root, tmp), 256)
        for name, (tok, max_len) in sorted(pinned.items()):
            path = os.path.join(out, name + ".tokenizer.json.gz")
            d = json.loads(tok.to_str())
            if name in LEGACY_MERGES:
                # tokenizers writes merges as pairs; older files hold "a b" strings.
                d["model"]["merges"] = [" ".join(m) for m in d["model"]["merges"]]
            data = json.dumps(d, ensure_ascii=False).encode()
            tok = Tokenizer.from_str(data.decode())
            with gzip.GzipFile(path, "wb", mtime=0) as f:
                f.write(data)
            write_gz_lines(os.path.join(out, name + ".jsonl.gz"), golden_rows(tok, texts, max_len))
            meta["kinds"][name] = {"tokenizer": "testdata/tokenizers/" + name + ".tokenizer.json.gz",
                                   "sha256": hashlib.sha256(data).hexdigest(), "max_seq_length": max_len}
            print("tokenizers: %s (pinned)" % name, file=sys.stderr)
    for name, (rel, max_len) in sorted(REAL.items()):
        path = os.path.join(root, rel)
        tok = Tokenizer.from_file(path)
        write_gz_lines(os.path.join(out, name + ".jsonl.gz"), golden_rows(tok, texts, max_len))
        meta["kinds"][name] = {"tokenizer": rel, "sha256": sha256(path), "max_seq_length": max_len}
        print("tokenizers: %s (fetched)" % name, file=sys.stderr)
    with open(os.path.join(out, "kinds.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def load_kind(root, kind):
    path = os.path.join(root, kind["tokenizer"])
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            data = f.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    if hashlib.sha256(data).hexdigest() != kind["sha256"]:
        sys.exit("%s: sha256 differs from kinds.json" % path)
    return Tokenizer.from_str(data.decode())


def left_rows(tok, texts, max_len):
    """Per text that truncation cuts: its ids truncated on the left."""
    tok = Tokenizer.from_str(tok.to_str())
    tok.no_padding()
    tok.no_truncation()
    stripped = [t.strip() for t in texts]
    full = [e.ids for e in tok.encode_batch(stripped, add_special_tokens=True)]
    tok.enable_truncation(max_len, direction="left")
    left = [e.ids for e in tok.encode_batch(stripped, add_special_tokens=True)]
    return [{"text": i, "ids": b} for i, (a, b) in enumerate(zip(full, left)) if len(a) > max_len]


def main_left():
    root = sys.argv[1]
    out = os.path.join(root, "testdata", "tokenizers")
    with gzip.open(os.path.join(out, "corpus.jsonl.gz"), "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    with open(os.path.join(out, "kinds.json")) as f:
        meta = json.load(f)
    rows = []
    for name, kind in sorted(meta["kinds"].items()):
        got = left_rows(load_kind(root, kind), texts, kind["max_seq_length"])
        rows.extend(dict(kind=name, **r) for r in got)
        print("left truncation: %s, %d texts cut" % (name, len(got)), file=sys.stderr)
    write_gz_lines(os.path.join(out, "left-truncation.jsonl.gz"), rows)


if __name__ == "__main__":
    if sys.argv[2:] == ["left"]:
        main_left()
    else:
        main()
