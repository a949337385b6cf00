"""Proving a load: typed statistics and their algebra (``stats``), the row hashes (``rowhash``, ``pghash``),
their source side over Arrow batches (``batch``) and their PostgreSQL side (``postgres``)."""
