# The exporter alone on a minimal non-root image. Base images are build
# arguments, so that a builder without registry access can use its own:
#   docker build -t cometchat-exporter:$(git describe --tags --always) --build-arg VERSION=... .
# From a binary built outside (make build), with no image pulled at all:
#   podman build --target prebuilt --build-arg RUNTIME_IMAGE=scratch .
ARG BUILDER_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# First, so that building this target reads no other stage.
FROM ${RUNTIME_IMAGE} AS prebuilt
COPY cometchat_exporter /bin/cometchat_exporter
# A writable place for --state.file=/var/lib/cometchat-exporter/state.json.
COPY --chown=65532:65532 deploy/container/state/ /var/lib/cometchat-exporter/
USER 65532:65532
EXPOSE 9877
ENTRYPOINT ["/bin/cometchat_exporter"]

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION}" \
      -o /out/cometchat_exporter .

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/cometchat_exporter /bin/cometchat_exporter
COPY --chown=65532:65532 deploy/container/state/ /var/lib/cometchat-exporter/
USER 65532:65532
EXPOSE 9877
ENTRYPOINT ["/bin/cometchat_exporter"]
