"""Retry helpers for flaky network calls."""

import random
import time


class RetryPolicy:
    """How many times to retry and how long to wait between attempts."""

    def __init__(self, attempts=5, base_delay=0.5, max_delay=30.0, jitter=True):
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter

    def backoff(self, attempt):
        """Exponential backoff: the delay doubles after every failed attempt."""
        delay = min(self.max_delay, self.base_delay * (2 ** attempt))
        if self.jitter:
            delay = random.uniform(0, delay)
        return delay


def retry(policy, func, *args, retry_on=(ConnectionError, TimeoutError), **kwargs):
    """Call func until it succeeds, sleeping with exponential backoff between failures."""
    last_error = None
    for attempt in range(policy.attempts):
        try:
            return func(*args, **kwargs)
        except retry_on as error:
            last_error = error
            time.sleep(policy.backoff(attempt))
    raise last_error
