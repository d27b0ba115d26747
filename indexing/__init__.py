"""The index directory and the vector and lexical indexes inside it."""
