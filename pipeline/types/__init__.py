"""Arrow -> PostgreSQL: the type mapping (``mapping``), the text forms of values (``text``, ``nested`` for
jsonb, ``temporal`` for dates outside the years 1-9999)."""
