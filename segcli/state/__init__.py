"""Stage 4, state: the manifest, snapshots, lock and commit (manifest last), and the segment
kinds' rules (dynamic, semi_dynamic, static, overrides, refresh) with entered/left.

May import: segcli.spec, segcli.planning, segcli.engines (and errors, fs).
"""
