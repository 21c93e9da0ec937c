"""Views: what a person reads about a run (show, explain, explain --contact, diff, history,
check, report and its HTML page). Built on the library facade `segcli.api`.

May import: everything but segcli.cli.
"""
