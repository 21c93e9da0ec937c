"""The demo: the synthetic export generator (`segcli sample`) and `segcli init`.

May import: segcli.spec (and errors, fs). Nothing of the run pipeline depends on it.
"""
