/** Evaluation measures for explanation maps: pure math on number arrays, for Node and the browser alike. */
export { mean, median, quantile, iqr, summarise, trapezoid, rankdata, type Summary } from './stats.js';
export {
  removalOrder,
  removalSteps,
  perturbationAuc,
  comprehensiveness,
  sufficiency,
  topFraction,
  DEFAULT_FRACTIONS,
  ERASER_BINS,
  type PerturbationTest,
  type RemovalStepOptions,
} from './perturbation.js';
export {
  segmentationScores,
  averagePrecision,
  pointingGame,
  relevanceMassAccuracy,
  relevanceRankAccuracy,
  type SegmentationScores,
  type PointingGameOptions,
} from './localisation.js';
export { kendallTau, agreementMatrix, totalVariation, jensenShannon } from './agreement.js';
