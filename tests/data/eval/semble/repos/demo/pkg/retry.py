"""Retries with exponential backoff."""

import time


def backoff_delay(attempt, base=0.5, cap=30.0):
    """Return the wait before retry number ``attempt``: exponential backoff, capped."""
    delay = base * (2 ** attempt)
    return min(delay, cap)


def retry(call, attempts=5):
    """Call ``call`` until it succeeds, sleeping with exponential backoff between retries."""
    for attempt in range(attempts):
        try:
            return call()
        except OSError:
            time.sleep(backoff_delay(attempt))
    return call()
