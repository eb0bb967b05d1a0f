"""`newsdesk chat` (the web chat) and `newsdesk serve` (the HTTP API with the chat),
on this machine only unless told otherwise."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from newsdesk.clikit import (
    EXIT_FAILED,
    answerer_options,
    index_dir_option,
    reported,
    settings_from,
)
from newsdesk.server import RECORD, advertise, withdraw
from newsdesk.settings import TOKEN_ENV, Settings

if TYPE_CHECKING:
    from ui.service import ChatService

host_option = click.option(
    "--host", help="Address to listen on (default 127.0.0.1: this machine only)."
)
port_option = click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on (default 7860)."
)


@click.command()
@host_option
@port_option
@answerer_options
@index_dir_option
def chat(host: str | None, port: int | None, index_dir: Path | None, **answerer: Any) -> None:
    """Open the web chat over the index: cited answers, sources, uploads, rebuilds.

    Beyond 127.0.0.1 it needs a token (NEWSDESK_TOKEN or chat.token), asked for as the
    password of a login page.
    """
    settings = _settings(index_dir, host, port, answerer)
    token = _token(settings)
    service = _open(settings)
    from ui.api import LOGIN_MESSAGE, chat_login
    from ui.app import build_page

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
        auth=chat_login(token, service.admin_token),
        auth_message=LOGIN_MESSAGE,
    )


@click.command()
@host_option
@port_option
@answerer_options
@index_dir_option
def serve(host: str | None, port: int | None, index_dir: Path | None, **answerer: Any) -> None:
    """Serve the HTTP API (/v1/…, OpenAPI at /docs) and the web chat (/) on one port.

    Beyond 127.0.0.1 it needs a token (NEWSDESK_TOKEN or chat.token): API calls then
    send `Authorization: Bearer TOKEN`, and the chat asks for it as its password.
    """
    settings = _settings(index_dir, host, port, answerer)
    token = _token(settings)
    service = _open(settings)
    from ui.api import create_app

    app = create_app(service, token)
    where = f"http://{settings.chat.host}:{settings.chat.port}"
    access = "bearer token required" if token else "no token: this machine only"
    click.echo(
        f"newsdesk API on {where}/v1 ({access}), docs on {where}/docs, chat on {where}/ "
        "(Ctrl-C stops it)",
        err=True,
    )
    _advertised_server(settings, app).run()


def _advertised_server(settings: Settings, app: Any) -> Any:
    """A uvicorn server that, once listening, leaves the record by which `newsdesk ask` on
    this index finds it and asks it instead of loading the model (newsdesk.server), and
    removes it on the way out: in shutdown, since uvicorn re-raises a stopping signal
    after `run` returns, so code after `run` never runs."""
    import uvicorn

    host, port = settings.chat.host, settings.chat.port
    record = settings.index_dir / RECORD

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                advertise(settings.index_dir, host, port)

        async def shutdown(self, sockets: Any = None) -> None:
            withdraw(record)
            await super().shutdown(sockets)

    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


def _token(settings: Settings) -> str | None:
    """chat.token, if set; required (else exit 1) to listen beyond this machine."""
    secret = settings.chat.bearer
    if not secret and not is_loopback(settings.chat.host):
        click.echo(
            f"error: not listening on {settings.chat.host} without a token: anyone who can "
            f"reach this machine could read the articles and change the index. Set "
            f"{TOKEN_ENV} (or chat.token in newsdesk.toml), or listen on 127.0.0.1",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    return secret


def _settings(
    index_dir: Path | None, host: str | None, port: int | None, answerer: dict[str, Any]
) -> Settings:
    settings = settings_from(index_dir, **answerer)
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    return settings.model_copy(update={"chat": settings.chat.model_copy(update=changes)})


def _open(settings: Settings) -> ChatService:
    """The chat's service over the index, warmed up, with Gradio's environment set
    before Gradio is first imported."""
    # Gradio reads these when imported: no telemetry, and uploads stay in the data dir.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(settings.index_dir.resolve() / ".gradio")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from ui.service import ChatService

    service = ChatService(settings)
    with reported():
        click.echo(f"opening the index in {settings.index_dir} …", err=True)
        if service.answerer() is None:
            click.echo(f"note: {service.no_index_message()}", err=True)
        service.warm_up()
    return service
