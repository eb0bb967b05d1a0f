"""`newsdesk chat`: the web chat, on this machine only unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from index.embed import ModelNotAvailable
from index.lexical import LexicalIndexError
from index.manifest import UnusableIndex
from index.store import StoreUnavailable
from newsdesk.clikit import answerer_options, index_dir_option, reported, settings_from
from rag.llm import LlmNotConfigured

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default 7860).")
@answerer_options
@index_dir_option
def chat(host: str | None, port: int | None, index_dir: Path | None, **answerer: Any) -> None:
    """Open the web chat over the index: cited answers, sources, uploads, rebuilds."""
    settings = settings_from(index_dir, **answerer)
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update={"chat": settings.chat.model_copy(update=changes)})
    # Gradio reads these when imported: no telemetry, and uploads stay in the data dir.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(settings.index_dir.resolve() / ".gradio")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from ui.app import build_page
    from ui.service import ChatService

    service = ChatService(settings)
    failures = (UnusableIndex, ModelNotAvailable, StoreUnavailable, LexicalIndexError)
    with reported(*failures, LlmNotConfigured):
        click.echo(f"opening the index in {settings.index_dir} …", err=True)
        if service.answerer() is None:
            click.echo(f"note: {service.no_index_message()}", err=True)
        service.warm_up()
    if settings.chat.host not in _LOOPBACK:
        click.echo(
            f"warning: listening on {settings.chat.host}: anyone who can reach this machine "
            "can read the articles and change the index",
            err=True,
        )
    page = build_page(service)
    click.echo(
        f"newsdesk chat on http://{settings.chat.host}:{settings.chat.port} (Ctrl-C stops it)",
        err=True,
    )
    page.blocks.queue().launch(
        quiet=True,
        server_name=settings.chat.host,
        server_port=settings.chat.port,
        share=False,
        ssr_mode=False,
        pwa=False,
        inbrowser=False,
        show_error=True,
        # Bytes, not "50mb": Gradio's parser takes whole binary megabytes only, so a
        # configured 50 (read as 50.0) stopped the chat from starting.
        max_file_size=settings.chat.max_upload_bytes,
        css=page.css,
        js=page.js,
        footer_links=["api", "settings"],
    )
