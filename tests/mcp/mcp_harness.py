"""A real MCP client for the tests: the SDK's stdio client spawning `retriever mcp`.

The client runs on an event loop in a background thread (anyio's blocking portal), so
synchronous tests, and fixtures shared by a module, can call tools one line at a time.
Every call is bounded by a timeout: a hung server fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
from anyio.from_thread import start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

import retriever

CALL_TIMEOUT = 60.0
CHECKOUT = Path(retriever.__file__).resolve().parents[1]


def retriever_command() -> list[str]:
    """The `retriever` console script of this environment (or the same through Python)."""
    found = shutil.which("retriever", path=os.path.dirname(sys.executable))
    if found:
        return [found]
    return [sys.executable, "-c", "from retriever.cli.app import main; main()"]


def server_env() -> dict[str, str]:
    """What the server process needs: this checkout, offline models, the test's cache."""
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(CHECKOUT)}
    for name in ("DENSE_RETRIEVER_CACHE", "HOME", "TMPDIR", "PATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class Client:
    """Synchronous calls into one MCP session."""

    def __init__(self, portal, session: ClientSession) -> None:
        self._portal = portal
        self.session = session

    def _run(self, call, *args):
        async def bounded():
            with anyio.fail_after(CALL_TIMEOUT):
                return await call(*args)

        return self._portal.call(bounded)

    def tools(self) -> dict:
        """Tool name -> its listing (input_schema, annotations, description)."""
        return {tool.name: tool for tool in self._run(self.session.list_tools).tools}

    def call(self, name: str, **arguments):
        """The raw CallToolResult."""
        return self._run(self.session.call_tool, name, arguments)

    def text(self, name: str, **arguments) -> str:
        """The one text block of a successful call (fails the test on a tool error)."""
        result = self.call(name, **arguments)
        assert not result.is_error, result.content[0].text
        assert len(result.content) == 1
        return result.content[0].text

    def json(self, name: str, **arguments) -> dict:
        return json.loads(self.text(name, **arguments))

    def error(self, name: str, **arguments) -> str:
        """The message of a call that must fail as a tool error."""
        result = self.call(name, **arguments)
        assert result.is_error, f"{name}({arguments}) did not fail: {result.content[0].text}"
        return result.content[0].text


@contextlib.contextmanager
def mcp_client(*args: str, cwd: Path | None = None, errlog=None) -> Iterator[Client]:
    """A session with ``retriever mcp *args``, closed (and the server gone) on exit."""
    command = retriever_command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "mcp", *args],
                                   env=server_env(), cwd=str(cwd) if cwd else None)

    @contextlib.asynccontextmanager
    async def session():
        async with stdio_client(params, **({"errlog": errlog} if errlog else {})) as streams:
            async with ClientSession(*streams) as opened:
                with anyio.fail_after(CALL_TIMEOUT):
                    await opened.initialize()
                yield opened

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
        session()
    ) as opened:
        yield Client(portal, opened)


def until(check: Callable[[], object], timeout: float = 30.0, every: float = 0.05):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(every)
