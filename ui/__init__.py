"""The Gradio chat (issue 6)."""
