# The demo's image for monitoring/docker-compose.yml (built from the
# repository root: docker compose -f monitoring/docker-compose.yml up --build).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p vk-parser

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/vk-parser /usr/local/bin/vk-parser
ENTRYPOINT ["/usr/local/bin/vk-parser"]
