// Text inputs for BERT-style classifiers (WordPiece) and GPT-2 (byte-level BPE). tokenizer.js and
// bpe.js load node:fs only inside their loaders and readTextFile, so this index is safe to import
// from the renderer too.
export * from './tokenizer.js';
export * from './bpe.js';
