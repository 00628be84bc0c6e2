"""Command line: ``eventsnn convert``, ``run``, ``analyze``, ``sweep``, ``export``, ``demo``, ``warmup``.

Each subcommand's module holds its flags next to a short handler that calls the library
(``eventsnn.pipeline`` and below) and prints; this module assembles them and turns errors into
one line and an exit code: 2 for bad input or a missing extra, 1 for a bug, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings
from typing import Iterator

from .. import memory
from . import analyze, convert, run, sweep, tools
from .options import HelpFormatter, add_global_options

DESCRIPTION = ("Convert trained CNNs into spiking networks and run them event-driven on the CPU. "
               "Global options (--debug, --memory-limit-mib) go before or after the command.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventsnn", description=DESCRIPTION, formatter_class=HelpFormatter)
    add_global_options(parser)
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module in (convert, run, analyze, sweep):
        module.add_parser(sub)
    tools.add_parsers(sub)
    return parser


class _Subcommands:
    """``add_subparsers`` that gives every subcommand the global options and the help formatter."""

    def __init__(self, action):
        self._action = action

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))
        p = self._action.add_parser(name, formatter_class=HelpFormatter, **kwargs)
        add_global_options(p, suppress_defaults=True)
        return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.memory_limit_mib is not None:
        if not args.memory_limit_mib > 0 or args.memory_limit_mib == float("inf"):
            raise SystemExit("eventsnn: --memory-limit-mib must be a positive finite number of MiB")
        os.environ[memory.ENV] = str(args.memory_limit_mib)
    try:
        with warnings.catch_warnings(), _terminations_as_exceptions():
            warnings.showwarning = _one_line_warning(args.command)
            return args.func(args)
    except Terminated as stop:  # SIGTERM, SIGHUP: unwound like Ctrl-C, so no temporary file is left
        print(f"\neventsnn {args.command}: terminated ({signal.Signals(stop.signum).name})", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:  # the reader went away (`eventsnn run ... | head`): nothing left to say
        _silence_stdout()
        return 0
    except (ValueError, OSError, ImportError) as err:  # bad input or a missing extra: a clear message
        print(f"eventsnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\neventsnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one line, the traceback on request
        if args.debug:
            raise
        print(f"eventsnn {args.command}: unexpected error: {type(err).__name__}: {err} "
              "(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is, so that cleanups run (as for Ctrl-C)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _terminations_as_exceptions() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # handlers can be set in the main thread only
        yield
        return

    def stop(signum, frame):
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _one_line_warning(command: str):
    """Warnings as one line for the user (not Python's file, line and source)."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"eventsnn {command}: warning: {message}", file=sys.stderr)
    return show


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
