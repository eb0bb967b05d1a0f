"""Questions → retrieved passages → cited answers, read-only over an index."""
