"""The ``ttsplan`` typer app. Each command lives in its own module and registers itself here.

Importing this module must stay cheap: no torch, transformers or vllm (checked by a test).
"""
from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="ttsplan",
    help="Plan test-time compute for LLM inference: measure what repeated sampling buys, price it, "
         "and allocate strategy and N per prompt under a budget.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


#: one module per command, ``cli/<name>_cmd.py``, each with ``register(app)``.
COMMANDS: tuple[str, ...] = ("curves", "features", "replay", "fit", "extrapolate", "estimate", "calibrate", "sample", "plan", "evaluate", "import", "export", "report", "run")


def _register() -> None:
    for name in COMMANDS:
        importlib.import_module(f".{name}_cmd", __package__).register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
