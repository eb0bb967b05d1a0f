"""The HTTP API of `newsdesk serve`, on the same port as the chat.

Every answer goes through the chat's `ChatService`, so the API, the chat and
`newsdesk ask --json` give one record (`rag.types.Answer`). Scripts and agents read
that record; chat front-ends and agents that speak OpenAI's chat API use
`/v1/chat/completions`, whose text is the answer with its sources and quotes and whose
extra `citations` field carries the exact spans.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from index.build import IndexReport, NothingToIndex
from index.dates import normalize_date
from index.db import read_manifest
from index.demo import DEMO_ATTRIBUTION
from index.lock import IndexBusy
from newsdesk import __version__
from newsdesk.errors import NewsdeskError
from rag.retrieve import Filters
from rag.types import Answer
from ui.render import paragraph_of
from ui.service import ADMIN_USER, Busy, ChatService, NoIndex
from ui.uploads import UploadRejected

LOGIN_MESSAGE = (
    "Sign in with any user name and this server's token as the password; to change the "
    f"index, as {ADMIN_USER!r} with the admin token."
)
MODEL = "newsdesk"  # the one model name /v1/models lists and completions report
_CONFLICT = (NoIndex, Busy, IndexBusy)  # the index is not in a state to do it now: 409
_REFUSED = (NothingToIndex, UploadRejected)  # what the request asked for cannot be: 422


class Invalid(Exception):
    """A request the schema admits but newsdesk cannot: answered 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- requests ----------------------------------------------------------------------


class Filtered(BaseModel):
    """The filters `newsdesk ask` takes, with the same meaning."""

    sources: list[str] = Field(default=[], description="Only articles from these outlets.")
    since: str | None = Field(default=None, description="Only articles published on or after.")
    until: str | None = Field(default=None, description="Only articles published on or before.")
    as_of: str | None = Field(
        default=None, description="The collection as it stood on this day (default: today)."
    )

    @field_validator("since", "until", "as_of")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        return normalize_date(value) if value else None

    def filters(self) -> Filters:
        return Filters.parse(tuple(self.sources), self.since, self.until, as_of=self.as_of)


class AskRequest(Filtered):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, examples=["Why is the harbour bridge closing?"])
    history: list[str] = Field(
        default=[], description="Earlier questions of the conversation, oldest first."
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("the question is empty")
        return question.strip()


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(Filtered):
    """OpenAI's chat request. Sampling options (temperature, max_tokens, …) are accepted
    and ignored: an answer is quoted or checked, not sampled."""

    model_config = ConfigDict(extra="allow")

    model: str = MODEL
    messages: list[Message] = Field(min_length=1)
    stream: bool = False

    def conversation(self) -> tuple[str, list[str]]:
        """The last user message (the question) and the user messages before it."""
        asked = [m.text.strip() for m in self.messages if m.role == "user"]
        if not asked or not asked[-1]:
            raise Invalid("messages", "the last user message, the question, is missing or empty")
        return asked[-1], [text for text in asked[:-1] if text]


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(
        min_length=1,
        description="Article files or folders on the server's disk (relative: to its "
        "working directory).",
    )
    prune: bool = Field(
        default=False, description="Also remove indexed articles no longer in these paths."
    )


# --- replies -----------------------------------------------------------------------


class Span(BaseModel):
    start: int
    end: int
    text: str  # always the article's text[start:end]


class ArticleReply(BaseModel):
    index_version: str
    id: str
    title: str
    url: str
    date: str | None
    source: str
    author: str
    text: str | None = Field(description="The whole text; null when a span was asked for.")
    span: Span | None = None
    paragraph: Span | None = None


class StatusReply(BaseModel):
    ready: bool
    index_dir: str
    index_version: str | None
    status: dict[str, Any] | None = Field(description="What `newsdesk index status` reports.")
    attribution: str | None = Field(description="The licence line the demo articles need.")
    message: str | None = Field(description="How to make an index, when there is none.")


class ProblemReply(BaseModel):
    where: str
    field: str | None
    message: str
    kept: bool


class UpdateReply(BaseModel):
    summary: str
    index_version: str | None
    added: int
    changed: int
    unchanged: int
    removed: int
    chunks_embedded: int
    problems: list[ProblemReply]


def _update_reply(report: IndexReport) -> UpdateReply:
    manifest = report.manifest
    return UpdateReply(
        summary=report.summary() if manifest is not None else "nothing changed",
        index_version=manifest.state if manifest is not None else None,
        added=report.added,
        changed=report.changed,
        unchanged=report.unchanged,
        removed=report.removed,
        chunks_embedded=report.chunks_embedded,
        problems=[ProblemReply.model_validate(p, from_attributes=True) for p in report.problems],
    )


# --- the app -----------------------------------------------------------------------


def create_app(service: ChatService, token: str | None = None, chat: bool = True) -> FastAPI:
    """The API under /v1 (a bearer `token` required when one is given), OpenAPI at /docs,
    and, with `chat`, the Gradio chat at / (its login password is the token). With
    chat.admin_token set, only that token may change the index (and it may also ask)."""
    admin = service.admin_token
    if admin is not None and admin == token:
        raise NewsdeskError(
            "chat.admin_token is the same as chat.token, so it would restrict nothing: "
            "give the admin token (NEWSDESK_ADMIN_TOKEN) a value of its own"
        )
    app = FastAPI(
        title="newsdesk",
        version=__version__,
        description="Cited answers from an article collection; every quote is an exact span.",
    )
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Invalid, _invalid)
    app.add_exception_handler(NewsdeskError, _failed)
    app.add_exception_handler(OSError, _failed)
    readers = (token, admin) if token is not None else ()
    app.include_router(
        _api(service, admin), prefix="/v1", dependencies=[Depends(_bearer(*readers))]
    )
    if chat:
        _mount_chat(app, service, token)
    return app


def _api(service: ChatService, admin: str | None) -> APIRouter:
    router = APIRouter()
    # Questions are answered concurrently (FastAPI runs each in a worker thread): the
    # answerer and its reader are shared, and a generated answer's wait for the model
    # holds no lock. Writes take turns (Busy); with an admin token, only it may write.
    writers = (admin,) if admin is not None else ()

    def answer(question: str, history: list[str], filters: Filters, field: str) -> Answer:
        limit = service.settings.chat.max_question_chars
        if len(question) > limit:
            raise Invalid(
                field,
                f"{len(question):,} characters; at most {limit:,} (chat.max_question_chars)",
            )
        return service.ask(question, history, filters)

    @router.post("/ask", response_model=Answer, summary="A cited answer (the answer record)")
    def ask(body: AskRequest) -> Response:
        """The record `newsdesk ask --json` prints: every citation is an exact span."""
        found = answer(body.question, body.history, body.filters(), "question")
        return Response(found.model_dump_json(), media_type="application/json")

    @router.get("/articles/{article_id:path}", summary="An article, or a span and its paragraph")
    def article(
        article_id: str,
        start: Annotated[int | None, Query(ge=0)] = None,
        end: Annotated[int | None, Query(ge=0)] = None,
    ) -> ArticleReply:
        """From the live index state. With `start` and `end`: `text[start:end]` and the
        paragraph around it, instead of the whole text."""
        answerer = service.answerer()
        if answerer is None:
            raise NoIndex(service.no_index_message())
        found = answerer.reader.articles.get(article_id)
        if found is None:
            raise HTTPException(404, f"no article {article_id!r} in this index")
        reply = ArticleReply(
            index_version=answerer.reader.version,
            id=found.id,
            title=found.title,
            url=found.url,
            date=found.date,
            source=found.source,
            author=found.author,
            text=found.text,
        )
        if start is None and end is None:
            return reply
        if start is None or end is None:
            raise Invalid("start" if start is None else "end", "give both start and end")
        if end > len(found.text):
            raise Invalid("end", f"past the end of the article ({len(found.text)} characters)")
        if start >= end:
            raise Invalid("end", "must be greater than start")
        low, high = paragraph_of(found.text, start, end)
        return reply.model_copy(
            update={
                "text": None,
                "span": Span(start=start, end=end, text=found.text[start:end]),
                "paragraph": Span(start=low, end=high, text=found.text[low:high]),
            }
        )

    @router.get("/index/status", summary="What `newsdesk index status` reports")
    def status() -> StatusReply:
        info, demo = service.status()
        manifest = read_manifest(service.index_dir) if info is not None else None
        return StatusReply(
            ready=info is not None,
            index_dir=str(service.index_dir),
            index_version=manifest.state if manifest else None,
            status=info,
            attribution=DEMO_ATTRIBUTION if demo else None,
            message=None if info is not None else service.no_index_message(),
        )

    @router.post(
        "/index/update",
        summary="Index what is new or changed in files on the server",
        dependencies=[Depends(_bearer(*writers, admin_only=True))],
    )
    def update(body: UpdateRequest) -> UpdateReply:
        """The incremental update of `newsdesk index update`; one write at a time (409
        while another runs). Questions are answered from the old state until it ends.
        With chat.admin_token set, only that token may call it."""
        for number, path in enumerate(body.paths):
            if not Path(path).exists():
                raise Invalid(f"paths.{number}", f"{path}: no such file or folder on the server")
        return _update_reply(service.update([Path(p) for p in body.paths], prune=body.prune))

    @router.get("/models", summary="OpenAI-compatible: the one model, newsdesk")
    def models() -> dict[str, Any]:
        card = {"id": MODEL, "object": "model", "created": 0, "owned_by": "newsdesk"}
        return {"object": "list", "data": [card]}

    @router.post("/chat/completions", summary="OpenAI-compatible chat (stream too)")
    def chat_completions(body: ChatRequest) -> Response:
        """The last user message is the question, earlier ones the conversation. The
        message is the answer with its numbered sources and their exact quotes;
        the extra top-level `citations` holds the spans (in the last chunk when
        streaming). Only checked text is sent, so a stream never takes words back."""
        question, history = body.conversation()
        found = answer(question, history, body.filters(), "messages")
        content = chat_text(found)
        current = service.answerer()
        if current is not None and current.reader.manifest.includes_demo:
            content += f"\n\n{DEMO_ATTRIBUTION}"
        citations = [c.model_dump(mode="json") for c in found.citations]
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            events = _chunks(ident, created, content, citations)
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "citations": citations,
            }
        )

    return router


def chat_text(answer: Answer) -> str:
    """The answer for a chat front-end: its text with the [n] markers, its notes, then
    each source with its byline, url, and the exact quote with its span. Plain text in
    blank-line-separated blocks reads the same in a terminal and rendered as Markdown,
    and the quotes are not re-wrapped, so each is the article's text verbatim."""
    blocks = [answer.answer, *(f"Note: {note}" for note in answer.notes)]
    if answer.citations:
        blocks.append("Sources:")
    for c in answer.citations:
        lines = [f"[{c.n}] {c.title or c.article_id} ({c.byline})" + (f" {c.url}" if c.url else "")]
        lines.append(f"“{c.text}” (article {c.article_id}, characters {c.start}-{c.end})")
        if c.also:
            lines.append("also reported by: " + ", ".join(a.outlet for a in c.also))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _chunks(ident: str, created: int, content: str, citations: list[Any]) -> Iterator[str]:
    """OpenAI's server-sent events: the role, the text a line at a time, the finish
    with the citations, then `[DONE]`."""
    base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL}

    def event(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra})}\n\n"

    yield event({"role": "assistant", "content": ""})
    for line in content.splitlines(keepends=True):
        yield event({"content": line})
    yield event({}, "stop", citations=citations)
    yield "data: [DONE]\n\n"


# --- access and errors -------------------------------------------------------------

_scheme = HTTPBearer(auto_error=False, description="The server's token (chat.token).")


def _bearer(*tokens: str | None, admin_only: bool = False) -> Any:
    """A dependency that lets a request through only with `Authorization: Bearer T`, T
    one of `tokens` (anything goes when there is none: loopback only, see
    `ui.cli.serve`). The reply never names a token."""
    accepted = [token for token in tokens if token is not None]
    needed = "the admin token (chat.admin_token)" if admin_only else "a valid token"

    def check(
        given: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)],
    ) -> None:
        if not accepted:
            return
        if given is None or not any(_same(given.credentials, t) for t in accepted):
            raise HTTPException(
                401,
                f"{needed} is required: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def chat_login(token: str | None, admin: str | None) -> Callable[[str, str], bool] | None:
    """Gradio's login check (None: no login, on this machine with neither token). The
    user named ADMIN_USER signs in with the admin token and may change the index; any
    other name with the token (with only an admin token set: any password) may ask."""
    if token is None and admin is None:
        return None

    def login(user: str, password: str) -> bool:
        if admin is not None and user == ADMIN_USER:
            return _same(password, admin)
        return token is None or _same(password, token)

    return login


def _same(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors, each named by its field ("since", "messages.0.role")."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in error["loc"][1:]) or "body", "message": error["msg"]}
        for error in exc.errors()
    ]
    return _error(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Invalid)
    return _error(422, str(exc), [{"field": exc.field, "message": exc.message}])


async def _failed(request: Request, exc: Exception) -> JSONResponse:
    """Our expected failures (the CLI's `reported`): the message as is, and a status
    saying whose move it is."""
    if isinstance(exc, _CONFLICT):
        return _error(409, str(exc))
    if isinstance(exc, _REFUSED):
        return _error(422, str(exc))
    return _error(503 if isinstance(exc, NewsdeskError) else 500, str(exc))


def _error(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def _mount_chat(app: FastAPI, service: ChatService, token: str | None) -> None:
    """The Gradio chat at /, as `newsdesk chat` serves it; with a token, behind Gradio's
    login (any user name, the token as the password)."""
    import gradio as gr

    from ui.app import build_page

    page = build_page(service)
    gr.mount_gradio_app(
        app,
        page.blocks.queue(),
        path="/",
        server_name=service.settings.chat.host,
        server_port=service.settings.chat.port,
        auth=chat_login(token, service.admin_token),
        auth_message=LOGIN_MESSAGE,
        footer_links=["api", "settings"],
        show_error=True,
        ssr_mode=False,
        pwa=False,
        max_file_size=service.settings.chat.max_upload_bytes,
        css=page.css,
        js=page.js,
    )
