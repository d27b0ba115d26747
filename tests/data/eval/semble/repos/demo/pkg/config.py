"""Configuration loading."""

import json


def parse_config(path):
    """Parse the JSON configuration file at ``path`` into a dict."""
    with open(path) as handle:
        return json.load(handle)
