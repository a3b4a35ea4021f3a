"""Stage 8, report: rendering only; every figure comes computed from :mod:`neurodeploy.cost`.

Enters: a cost report's figures (the JSON contract), a run's spikes, a sweep's table. Leaves: the
terminal table (:func:`~neurodeploy.report.terminal.print_summary`, the entry function), the HTML
report (:func:`~neurodeploy.report.html.write_html`) and the sweep's HTML page
(:mod:`~neurodeploy.report.sweep_html`).
"""
