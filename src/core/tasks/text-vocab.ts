/**
 * Word lists of the synthetic text task. Fillers deliberately leave out every word that carries sentiment
 * ("good", "bad", "love", "happy"...) or negation ("no", "never", "nothing", "without"...): the task's rule
 * only knows the sentiment words below and the negator "not", and a filler that a reader (or a pretrained
 * model) would take as sentiment or negation would make the ground truth disagree with the text.
 */

export const POSITIVE_WORDS = [
  'wonderful', 'excellent', 'delightful', 'superb', 'brilliant', 'fantastic', 'lovely', 'marvelous', 'charming',
  'splendid', 'terrific', 'pleasant', 'enjoyable', 'magnificent', 'outstanding', 'impressive', 'beautiful',
  'perfect', 'amazing', 'glorious',
] as const;

export const NEGATIVE_WORDS = [
  'terrible', 'awful', 'horrible', 'dreadful', 'miserable', 'disgusting', 'boring', 'dull', 'unpleasant',
  'annoying', 'disappointing', 'mediocre', 'tedious', 'hideous', 'lousy', 'atrocious', 'painful', 'bland',
  'pathetic', 'clumsy',
] as const;

export const NEGATOR = 'not';

/** Punctuation tokens: the quote mark delimiting quoted asides and the final period. */
export const QUOTE = '"';
export const PERIOD = '.';

export const DETERMINERS = [
  'the', 'a', 'this', 'that', 'every', 'some', 'our', 'their', 'his', 'her', 'my', 'its', 'one', 'two', 'three',
  'another',
] as const;

export const PRONOUNS = ['she', 'he', 'they', 'we', 'i', 'you', 'it', 'someone', 'everyone'] as const;

export const NOUNS = [
  'market', 'river', 'train', 'station', 'garden', 'kitchen', 'window', 'table', 'chair', 'door', 'book', 'letter',
  'road', 'bridge', 'house', 'city', 'village', 'forest', 'mountain', 'valley', 'beach', 'harbor', 'island',
  'school', 'teacher', 'student', 'doctor', 'farmer', 'driver', 'baker', 'painter', 'neighbor', 'friend',
  'brother', 'sister', 'mother', 'father', 'child', 'family', 'dog', 'cat', 'horse', 'bird', 'fish', 'tree',
  'flower', 'field', 'stone', 'wall', 'roof', 'street', 'corner', 'shop', 'office', 'meeting', 'report', 'movie',
  'song', 'dinner', 'lunch', 'breakfast', 'coffee', 'tea', 'bread', 'soup', 'cake', 'apple', 'car', 'bus', 'boat',
  'plane', 'ticket', 'map', 'clock', 'morning', 'evening', 'night', 'afternoon', 'week', 'month', 'year', 'winter',
  'summer', 'autumn', 'weather', 'rain', 'snow', 'wind', 'sun', 'moon', 'hotel', 'museum', 'library', 'park',
  'concert', 'game', 'team', 'crowd', 'room', 'hall', 'camera', 'phone', 'picture', 'story', 'paper', 'box', 'bag',
  'bottle', 'glass', 'plate', 'lamp', 'sign', 'critic', 'guide', 'waiter', 'menu', 'note', 'poster', 'radio',
] as const;

export const ADJECTIVES = [
  'old', 'new', 'small', 'large', 'red', 'blue', 'green', 'yellow', 'white', 'black', 'tall', 'short', 'long',
  'wooden', 'busy', 'quiet', 'early', 'late', 'open', 'round', 'heavy', 'narrow', 'wide', 'local', 'main',
] as const;

export const VERBS = [
  'walked', 'arrived', 'opened', 'closed', 'carried', 'watched', 'visited', 'painted', 'cooked', 'wrote', 'read',
  'found', 'left', 'took', 'brought', 'moved', 'waited', 'stayed', 'crossed', 'passed', 'followed', 'noticed',
  'turned', 'started', 'finished', 'cleaned', 'built', 'bought', 'sold', 'played', 'called', 'asked', 'answered',
  'looked', 'sat', 'stood', 'went', 'came', 'saw', 'heard', 'met', 'kept', 'showed', 'sent', 'counted', 'packed',
  'fixed', 'checked', 'ordered', 'said', 'shouted', 'whispered', 'announced', 'replied',
] as const;

/** Link a subject to a sentiment word ("the soup was wonderful"); also used as ordinary fillers. */
export const COPULAS = ['was', 'is', 'seemed', 'looked', 'felt', 'sounded', 'were', 'became'] as const;

/** Verbs that introduce a quoted aside ('the sign said "awful"'); all also appear as ordinary fillers. */
export const QUOTE_VERBS = ['said', 'read', 'wrote', 'shouted', 'whispered', 'called', 'announced', 'replied'] as const;

export const PREPOSITIONS = [
  'in', 'on', 'at', 'near', 'under', 'over', 'behind', 'beside', 'across', 'through', 'after', 'before', 'during',
  'with', 'from', 'to', 'into', 'around', 'along', 'past', 'by', 'for', 'of', 'about', 'between',
] as const;

export const CONNECTIVES = ['and', 'but', 'then', 'so', 'while', 'because', 'when', 'as', 'or', 'there', 'here'] as const;

export const ADVERBS = [
  'very', 'quite', 'also', 'just', 'still', 'again', 'already', 'soon', 'later', 'today', 'yesterday', 'tomorrow',
  'outside', 'inside', 'slowly', 'quickly', 'quietly', 'together', 'almost', 'really', 'often', 'once',
] as const;

export const PLACES = [
  'paris', 'london', 'rome', 'berlin', 'tokyo', 'boston', 'madrid', 'vienna', 'lisbon', 'dublin', 'oslo', 'cairo',
] as const;

/** Every filler word, without duplicates (quote verbs and copulas overlap the verbs). */
export const FILLER_WORDS: readonly string[] = [
  ...new Set<string>([
    ...DETERMINERS, ...PRONOUNS, ...NOUNS, ...ADJECTIVES, ...VERBS, ...COPULAS, ...QUOTE_VERBS, ...PREPOSITIONS,
    ...CONNECTIVES, ...ADVERBS, ...PLACES,
  ]),
];
