"""The PostgreSQL side: the client (``client``: connect, transactions, retries, SQLSTATE-based failures),
the pipeline's state tables (``state``), a load's staging table and its COPYs (``staging``), the atomic
publish (``publish``) and the embedded default server (``embedded``)."""
