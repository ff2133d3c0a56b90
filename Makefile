# Shortcuts; the scripts are the reference (README.md).
.PHONY: build run test image clean

build: ## bin/distore-server and bin/distore
	go build -o bin/ ./cmd/distore-server ./cmd/distore

run: ## build, then run the server (ARGS="--levels memory,disk")
	exec ./scripts/run.sh $(ARGS)

test: ## the whole suite, with Ceph; see scripts/test.sh
	./scripts/test.sh

image: ## the container image distore-server:latest (deploy/Dockerfile)
	rm -rf .tmp/image && mkdir -p .tmp/image/data
	cp deploy/Dockerfile .tmp/image/
	CGO_ENABLED=0 go build -tags nogpu -trimpath -o .tmp/image/ ./cmd/distore-server
	docker build -t distore-server:latest .tmp/image

clean:
	rm -rf bin .tmp/image
