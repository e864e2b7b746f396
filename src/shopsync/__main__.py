"""``python -m shopsync`` is the ``shopsync`` command."""

from shopsync.cli import main

main()
