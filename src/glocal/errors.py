"""User-facing errors.

Anything raised as :class:`GlocalError` is a problem with the user's input (a file, a manifest
row, a config value) and is printed by the CLI as one clear message without a traceback.
Programming errors stay ordinary exceptions so that they keep their tracebacks.
"""

from __future__ import annotations


class GlocalError(Exception):
    """An error caused by user input; the message must name the culprit and what to do."""


class ConfigError(GlocalError):
    """A bad config key or value."""


class DataError(GlocalError):
    """A missing, broken or malformed data file, folder or manifest row."""


#: the fix named when a data error surfaces from a DataLoader worker process
WORKER_FIX = ("find and list bad files with `glocal scan DATA --out deny.txt` (then data.deny_list=deny.txt), "
              "or set data.on_error=skip / data.missing_audio=silence")


def one_line(exc: BaseException) -> str:
    """The message of a user-facing error as one line.

    An error raised inside a PyTorch DataLoader worker is re-raised in the main process with the
    worker's whole traceback as its message; only the original message is kept, followed by the
    fix (:data:`WORKER_FIX`).
    """
    text = str(exc)
    if "DataLoader worker process" in text and "Original Traceback" in text:
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-1].strip()
        name = type(exc).__name__
        for prefix in (f"{type(exc).__module__}.{name}: ", f"{name}: "):
            if last.startswith(prefix):
                last = last[len(prefix):]
                break
        if WORKER_FIX not in last:
            last = f"{last} (in a data loader worker; {WORKER_FIX})"
        return last
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
