"""Store: the project's one database (a SQLite file, or PostgreSQL): every table, its schema
version and migrations.

Enters: rows from every stage: runs and their documents (pipeline), aliases and promotion
decisions (registry), served predictions and feedback (serve), review tasks and gold labels
(review). Leaves: the same, read back through typed functions and classes per table family
(``runs``, ``registry``, ``serving``, ``gold``); ``schema`` defines every table, index and
pragma, ``connection`` the one way to open the store (SQLite: WAL, busy timeout, ``BEGIN
IMMEDIATE`` writers; PostgreSQL: advisory write locks) and the upgrade of an older store,
``dialect`` every difference between the two backends, ``transfer`` the copy of a whole store
from one to the other. No other module opens a connection or writes SQL.
It is the lowest stage: it imports none of the others.
"""

import lazy_loader

#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "connection": ["store_version", "upgrade_store"],
    "schema": ["SCHEMA_VERSION"],
    "transfer": ["copy_store"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
