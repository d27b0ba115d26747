"""The fixture sources here are data to mine and index, not tests to collect."""

collect_ignore_glob = ["*"]
