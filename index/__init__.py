"""Articles → sentence-aware chunks with exact offsets → embeddings → Chroma."""
