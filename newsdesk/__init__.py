"""newsdesk: cited answers from an article collection.

This package is the edge of the tool: the settings object and the command line.
The work lives in `index` (articles → chunks → Chroma), `rag` (questions → cited
answers), `ui` (the chat) and `eval` (citation-accuracy evaluation).
"""

__version__ = "0.1.0"
