"""Process titles: what `ps` and `top` show for the node and each worker
(`actormq: node`, `actormq: worker 1`), set with the setproctitle library;
without it the titles stay as they are and nothing else changes."""

from __future__ import annotations


def set_process_title(title: str) -> None:
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(title)
