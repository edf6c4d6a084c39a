# One image for every campusg process; docker-compose.yml picks the role with
# `campusg serve <role>`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin campusg

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/campusg /usr/local/bin/campusg
# MALLOC_ARENA_MAX: glibc gives each thread that calls malloc an arena of
# its own, and SQLite allocates from a thread per file; two arenas keep the
# embedded system's peak memory about a sixth lower at the same rate
# (docs/benchmarks.md, "Two malloc arenas"; `campusg bench` runs it so too).
ENV CAMPUSG_HOST=0.0.0.0 \
    PORT=8080 \
    RUST_LOG=info \
    MALLOC_ARENA_MAX=2
EXPOSE 8080
ENTRYPOINT ["campusg"]
CMD ["up"]
