"""The values a load is made of: ``TableName``, ``LoadOptions`` (how a table is loaded), ``Load`` (every path and
name of a load), ``Chunk`` and its ``Manifest``, ``Plan``. Nothing here talks to PostgreSQL or reads Parquet."""
