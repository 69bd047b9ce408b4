// Text inputs for BERT-style classifiers. tokenizer.js loads node:fs only inside loadTokenizer and
// readTextFile, so this index is safe to import from the renderer too.
export * from './tokenizer.js';
