# Build a static binary, then ship it alone on a minimal non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION}" \
      -o /out/cometchat_exporter . \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cometchat_exporter /bin/cometchat_exporter
# A writable place for --state.file=/var/lib/cometchat-exporter/state.json.
COPY --from=build --chown=65532:65532 /out/state /var/lib/cometchat-exporter
USER 65532:65532
EXPOSE 9877
ENTRYPOINT ["/bin/cometchat_exporter"]
