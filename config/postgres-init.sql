-- Run once by the postgres container on first start (docker-compose.yml mounts it into
-- /docker-entrypoint-initdb.d/). The pipeline creates its own tables in this schema.
CREATE SCHEMA IF NOT EXISTS pipeline;
