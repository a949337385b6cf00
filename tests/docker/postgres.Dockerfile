# Stand-in for postgres:15 (see standins.sh): Debian's PostgreSQL 15 behind an entrypoint that does what the official
# image's does for docker-compose.yml - POSTGRES_USER/PASSWORD/DB, /docker-entrypoint-initdb.d/*.sql on first start,
# data in /var/lib/postgresql/data, the server run as the postgres user.
FROM standin/debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /docker-entrypoint-initdb.d /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
CMD ["postgres"]
