/**
 * Debounce: postpone calling fn until the caller has stopped invoking it for `wait` ms,
 * e.g. to search only after the user stops typing in an input box.
 */
export function debounce(fn, wait = 250) {
  let timer = null;
  return function debounced(...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), wait);
  };
}

/** Throttle: call fn at most once every `interval` ms. */
export function throttle(fn, interval = 250) {
  let last = 0;
  return function throttled(...args) {
    const now = Date.now();
    if (now - last >= interval) {
      last = now;
      fn.apply(this, args);
    }
  };
}
