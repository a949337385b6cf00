"""The Parquet side: a folder's files and identity (``listing``), their footers (``footers``), the plan of
a load (``planning``) and the tables ``config/`` declares (``catalog``)."""
