'use strict';

/**
 * Converts a string to camel case, dropping dashes and underscores.
 *
 * @param {string} text the words to join
 * @returns {string} the camel-cased text
 */
function camelCase(text) {
  const words = text.split(/[-_\s]+/).filter(Boolean);
  return words
    .map((word, i) => (i === 0 ? word.toLowerCase() : word[0].toUpperCase() + word.slice(1)))
    .join('');
}

/**
 * Pads the start of a string with a character until it reaches a width.
 */
function padStart(text, width, fill) {
  let out = String(text);
  while (out.length < width) {
    out = (fill || ' ') + out;
  }
  return out;
}

// Not documented as a doc comment above: no blank line allowed in between.

function undocumented(a) {
  const b = a + 1;
  return b * 2;
}

module.exports = { camelCase, padStart, undocumented };
