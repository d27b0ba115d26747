/**
 * Reverse the characters of a string. Handles empty strings.
 * @param {string} text the input
 */
function reverseString(text) {
  const chars = text.split("");
  chars.reverse();
  return chars.join("");
}

/** Convert a string to upper case letters quickly. */
export const shout = (text) => {
  const upper = text.toUpperCase();
  return upper + "!";
};

class Greeter {
  /**
   * Greet a person by their name politely.
   */
  greet(name) {
    const greeting = "Hello, " + name;
    console.log(greeting);
    return greeting;
  }
}

// Not a doc comment so this function is skipped.
function plainComment(a) {
  const b = a + 1;
  return b;
}
