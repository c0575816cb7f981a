"""``python -m gradtx``: the demo, ``sweep``, ``lr-find`` and ``seeds`` (see ``--help``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from ._sweep._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
