/**
 * Add two numbers together and return the total.
 */
export function addNumbers(a: number, b: number): number {
  const total = a + b;
  console.log(total);
  return total;
}
