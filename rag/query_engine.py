"""newsdesk as llama-index components: a BaseRetriever and a query engine.

Users drop `NewsdeskRetriever` into their own query engines (and any llama-index
postprocessor works on its nodes); `CitedQueryEngine` answers like `newsdesk ask`
with `Response.source_nodes` holding exactly the cited sentences.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from index.llama import article_metadata
from rag.generate import AnswersQuestions
from rag.retrieve import Filters, Passage, Retriever
from rag.types import Citation


def passage_node(passage: Passage) -> NodeWithScore:
    """A retrieved chunk as a TextNode spanning exactly its characters in the article."""
    node = TextNode(
        id_=passage.chunk_id,
        text=passage.text,
        start_char_idx=passage.start,
        end_char_idx=passage.end,
        metadata={
            **article_metadata(passage.article),
            "dense_score": passage.dense_score,
            "lexical_score": passage.lexical_score,
        },
    )
    return NodeWithScore(node=node, score=passage.score)


def citation_node(citation: Citation) -> NodeWithScore:
    node = TextNode(
        id_=f"{citation.article_id}:{citation.start}-{citation.end}",
        text=citation.text,
        start_char_idx=citation.start,
        end_char_idx=citation.end,
        metadata=citation.model_dump(exclude={"text"}),
    )
    return NodeWithScore(node=node, score=citation.score)


class NewsdeskRetriever(BaseRetriever):
    def __init__(
        self,
        retriever: Retriever,
        filters: Filters | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._retriever = retriever
        self._filters = filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        passages = self._retriever.retrieve(query_bundle.query_str, self._filters)
        return [passage_node(p) for p in passages]


class CitedQueryEngine(BaseQueryEngine):
    """Any newsdesk answerer (extractive, or generated and checked) as a query engine;
    its source nodes are exactly the cited spans."""

    def __init__(
        self,
        answerer: AnswersQuestions,
        filters: Filters | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._answerer = answerer
        self._filters = filters

    def _query(self, query_bundle: QueryBundle) -> Response:
        answer = self._answerer.ask(query_bundle.query_str, filters=self._filters)
        return Response(
            response=answer.answer,
            source_nodes=[citation_node(c) for c in answer.citations],
            metadata={"answer": answer.model_dump()},
        )

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return self._query(query_bundle)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}
