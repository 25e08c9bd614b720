"""Display stagegate objects in Jupyter: HTML tables, checklists and process diagrams.

Processes, gate reports and analytics results with several parts have ``_repr_html_``, so a
notebook draws them by themselves; :func:`table` wraps any records or DataFrame, and
``%load_ext stagegate.display`` (or :func:`register`) makes plain lists of records draw as
tables too. Every string from the data is escaped. Charts are in :mod:`stagegate.charts`.

>>> from stagegate.display import table
>>> table([{"agent": "Ana", "win_rate": 0.61}])
<Table 1 rows x 2 columns>
"""

from stagegate.display._html import MAX_ROWS, Table, html, process_html, rows_of, table
from stagegate.display._ipython import list_html, load_ipython_extension, register

__all__ = [
    "MAX_ROWS",
    "Table",
    "html",
    "list_html",
    "load_ipython_extension",
    "process_html",
    "register",
    "rows_of",
    "table",
]
