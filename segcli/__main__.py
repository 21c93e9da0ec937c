"""Allow `python -m segcli`."""

from segcli.entry import main

main()
