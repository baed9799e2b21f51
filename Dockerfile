# syntax=docker/dockerfile:1
# One image with every payhook binary (cmd/*): ingress, dispatcher, reconciler,
# providersim, devstack, ... Pick one with the container command, e.g.
#   docker run payhook:dev ingress --config /etc/payhook/payhook.yaml
# Static (CGO_ENABLED=0), reproducible paths (-trimpath), non-root, on
# distroless/static (CA certificates and tzdata, no shell, no package manager).
# Checked statically by internal/deploytest (no Docker on the build machines).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so a code change does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -extldflags=-static -X github.com/payhook/payhook/internal/cli.Version=${VERSION}" \
      -o /out/ ./cmd/...

# busybox's static build, copied in as `wget` only: the compose healthchecks
# need one HTTP client (Kubernetes probes don't; they use httpGet).
FROM busybox:1.37-musl AS wget

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=wget /bin/busybox /usr/local/bin/wget
# 65532 is distroless's "nonroot" user; Kubernetes runAsNonRoot needs it numeric.
USER 65532:65532
EXPOSE 8080 8081 8082
ENTRYPOINT []
CMD ["ingress", "--help"]
