"""The `m2v-edge` command: argument parsing and error reporting only.

Each command group lives in `m2v_edge.commands.<group>` and exposes `register(subparsers)`; the handlers
call the library. Here, user errors (`M2VEdgeError`, bad files) become one line on stderr and exit code 2;
the traceback is shown only with `--verbose` (accepted before or after the command's name). SIGTERM stops a command
as Ctrl-C does, so the same clean-up runs (no half-written output is left behind).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from m2v_edge import __version__
from m2v_edge.commands import COMMAND_GROUPS
from m2v_edge.errors import M2VEdgeError

RUNTIME_DEPENDENCIES = frozenset({"onnxruntime", "numpy", "tokenizers"})
"""What `pip install m2v-edge` installs for the runtime; missing only after `--no-deps` or on an unsupported system."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: a KeyboardInterrupt, so that everything that cleans up after Ctrl-C runs."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (argparse prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    parser = _Parser(prog="m2v-edge", description="Model2Vec embeddings on edge devices.")
    parser.add_argument("--version", action="version", version=f"m2v-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMAND_GROUPS:
        register(subparsers)
    _accept_verbose_after_commands(parser)
    return parser


VERBOSE_HELP = "log details and show tracebacks on errors"


def _accept_verbose_after_commands(parser: argparse.ArgumentParser) -> None:
    """Let `-v`/`--verbose` also follow every (sub-)command's name: `m2v-edge encode -v ...`."""
    for action in parser._actions:  # argparse has no public way to walk its sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for command in {id(p): p for p in action.choices.values()}.values():
                # SUPPRESS: the command's parser sets `verbose` only when the option is given after it
                command.add_argument(
                    "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
                )
                _accept_verbose_after_commands(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="m2v-edge: %(levelname)s: %(message)s"
    )
    previous = _raise_on_sigterm()
    try:
        return int(args.handler(args) or 0)
    except (M2VEdgeError, OSError, ValueError) as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_gone():
            return 141  # the reader went away (`m2v-edge encode ... | head`): stop quietly, as `cat` does
        if args.verbose:
            raise
        message = " ".join(str(exc).splitlines()) or type(exc).__name__  # one line, whatever the library said
        print(f"m2v-edge {args.command}: error: {message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name not in RUNTIME_DEPENDENCIES or args.verbose:
            raise
        print(
            f"m2v-edge {args.command}: error: {exc.name} is not installed: pip install {exc.name} (onnxruntime has "
            "wheels for 64-bit systems only: on a Raspberry Pi, use 64-bit Raspberry Pi OS)",
            file=sys.stderr,
        )
        return 2
    except Terminated:
        print(f"m2v-edge {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"m2v-edge {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm() -> Any:
    """Make SIGTERM raise `Terminated` in the main thread; return the handler it had (None off the main thread,
    where Python cannot set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    return signal.signal(signal.SIGTERM, terminate)


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone; if so, stdout is pointed at /dev/null (a silent exit)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll (not Linux/BSD) or no real stdout
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return gone


if __name__ == "__main__":
    sys.exit(main())
