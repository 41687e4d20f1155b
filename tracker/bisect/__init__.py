"""Bisect: the first upstream commit that breaks a patch set.

``model`` (the data), ``history`` (the git queries), ``search`` (the pure search over any check),
``probe`` (what is checked at one commit), ``describe`` (what a culprit touched), ``record`` (the
``culprit`` rows) and ``service`` (a patch set's bisect, and the automatic one after ``run``).
The JSON and terminal output is ``tracker.report.bisect``; the culprit queries are
``tracker.results.culprits``.
"""
