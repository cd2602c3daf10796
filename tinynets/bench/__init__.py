"""The benchmark harness behind ``python -m tinynets bench`` (kept apart from the library).

``command`` runs the sections, ``tn_jobs``/``torch_jobs`` build the same work in tinynets
and PyTorch, ``proc`` runs fresh processes, ``report`` writes the table and the plot.
``import tinynets`` never imports this package.
"""
