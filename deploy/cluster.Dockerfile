# A distore-server image from the project's own static binary, nothing else:
#   CGO_ENABLED=0 go build -tags nogpu -o deploy/build/distore-server ./cmd/distore-server
#   docker build -t distore-server -f deploy/cluster.Dockerfile deploy
# (used by compose.yaml; deploy/Dockerfile is the single-server image)
FROM scratch
COPY build/distore-server /distore-server
ENTRYPOINT ["/distore-server"]
