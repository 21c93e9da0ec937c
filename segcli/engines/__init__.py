"""Stage 3, execution: the data catalog (reading sources) and the engines that turn a Plan
into a query and run it once (Polars, streaming, is the default).

May import: segcli.spec, segcli.planning (and errors, fs).
"""
