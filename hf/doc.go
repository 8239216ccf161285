// Package hf reads a Hugging Face / sentence-transformers model folder
// without libtorch: config.json and the sentence-transformers files
// (modules.json, 1_Pooling/, Dense and Normalize modules,
// sentence_bert_config.json, config_sentence_transformers.json's prompts;
// see head.go and prompts.go), tokenizer.json (a
// WordPiece tokenizer matching Hugging Face tokenizers, its character
// classes generated from the real library), and safetensors weights. Text
// turns text into input ids as SentenceTransformer.tokenize does. The
// libtorch model (package minilm), the index (package corpus) and SageMaker
// packaging all read model folders through it, and it builds with
// CGO_ENABLED=0.
package hf
