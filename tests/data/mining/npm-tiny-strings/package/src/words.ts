/** Counts the words of a sentence, ignoring punctuation marks. */
export function countWords(sentence: string): number {
  const words = sentence
    .replace(/[^\w\s]/g, ' ')
    .split(/\s+/);
  return words.filter((w) => w.length > 0).length;
}
