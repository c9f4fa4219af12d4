"""Full-text indexing: tokens of Chinese and code text, and the FTS5 / GIN index behind one call."""
