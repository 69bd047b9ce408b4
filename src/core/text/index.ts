// Text inputs for BERT-style classifiers (WordPiece), GPT-2 (byte-level BPE) and any tokenizer.json
// (hf-tokenizer). tokenizer.js, bpe.js and hf-tokenizer.js load node:fs only inside their loaders
// and readTextFile, so this index is safe to import from the renderer too.
export * from './tokenizer.js';
export * from './bpe.js';
export * from './hf-tokenizer.js';
