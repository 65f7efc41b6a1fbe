# Sluice as a container image: build with the Swift 6.3 toolchain, run on a slim Debian 12.
#   docker build -t sluice .
#   docker run --rm sluice                      # the embedded default, listening on the container's loopback
#   docker run --rm -v $PWD/sluice.yaml:/etc/sluice/sluice.yaml:ro sluice serve --config /etc/sluice/sluice.yaml
# As a sidecar (examples/kubernetes/), the application reaches it on the pod's loopback, so the embedded
# default's 127.0.0.1 addresses serve it; listen on 0.0.0.0 only for what must reach it from outside the pod.
# The binary carries the Swift runtime and Foundation (--static-swift-stdlib, scripts/build-static): the runtime
# image adds only hiredis to Debian's slim base (which already has the C library, libstdc++ and zlib).
# (No container engine runs where Sluice is developed: CI builds the same static binary and checks it with
# scripts/check-static, which lists its libraries with ldd and runs a copy outside the build folder.)

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cp "$(scripts/build-static release)" /usr/local/bin/sluice \
 && strip /usr/local/bin/sluice

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
# Any non-root user: Sluice writes nothing but its logs (to stderr) unless the admin API is given a file it may
# write. Run with a read-only root file system.
USER 10001:10001
EXPOSE 7379 7380
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve"]
