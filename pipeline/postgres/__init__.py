"""The PostgreSQL side: the client (``client``: connect, transactions, retries, SQLSTATE-based failures), the
state schema (``schema``) and where loads stand in it (``state``), a load's staging table and its COPYs
(``staging``), the write modes (``modes``: ``replace``, ``append``, ``merge``, each a ``writes.Writer``), what a
replace keeps (``keep``), the declared indexes (``indexes``), the quarantine table (``quarantine``, ``rejected``)
and the embedded default server (``embedded``)."""
