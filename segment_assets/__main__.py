"""``python -m segment_assets``: see :mod:`segment_assets.cli`."""

from segment_assets.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
