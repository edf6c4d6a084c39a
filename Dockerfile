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
ENV CAMPUSG_HOST=0.0.0.0 \
    PORT=8080 \
    RUST_LOG=info
EXPOSE 8080
ENTRYPOINT ["campusg"]
CMD ["up"]
