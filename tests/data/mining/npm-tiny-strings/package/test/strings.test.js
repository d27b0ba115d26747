/** Checks that camel case joins the words of a dashed string. */
function checkCamelCase() {
  const got = camelCase('a-b');
  if (got !== 'aB') throw new Error(got);
  return got;
}
