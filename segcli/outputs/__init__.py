"""Stage 5, outputs: member, change and score files and run.json, each written atomically.

May import: segcli.spec, segcli.planning, segcli.engines, segcli.state (and errors, fs).
"""
