// Node entry point for the image module. Browser code should import preprocess.js, colormap.js and
// overlay.js directly: this index also re-exports io.js, which loads sharp.
export * from './preprocess.js';
export * from './colormap.js';
export * from './overlay.js';
export { decodeImage, encodePng, readImage, sniffImageFormat, writePng } from './io.js';
