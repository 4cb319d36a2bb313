# Build: the whole toolchain, then only the binary goes into the runtime image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
RUN cargo build --release --locked && strip target/release/ledgerline

# Run: a small Debian with a non-root user and the data volume.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ledgerline \
 && mkdir -p /data && chown ledgerline:ledgerline /data
COPY --from=build /src/target/release/ledgerline /usr/local/bin/ledgerline
USER ledgerline
WORKDIR /data
# The same zero-config default as `cargo run --release`, reachable from outside the container.
ENV LEDGERLINE_LISTEN=0.0.0.0:8080 \
    LEDGERLINE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["ledgerline", "healthcheck", "--address", "127.0.0.1:8080"]
ENTRYPOINT ["ledgerline"]
CMD ["serve"]
