# The same crate, lockfile and release profile as `cargo build --release` on a
# developer machine; the test suite runs against that same code.
FROM rust:1.95-bookworm AS build
WORKDIR /app
COPY . .
RUN cargo build --release --locked --bin gatehouse

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/gatehouse --create-home gatehouse
COPY --from=build /app/target/release/gatehouse /usr/local/bin/gatehouse
USER gatehouse
WORKDIR /var/lib/gatehouse
ENV HOST=0.0.0.0 PORT=8080 DATA_DIR=/var/lib/gatehouse
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["gatehouse", "healthcheck"]
ENTRYPOINT ["gatehouse"]
CMD ["serve"]
